"""The floor: a process that only lists the library's folders and stats every file."""

from __future__ import annotations

import os
import sys


def main(root: str) -> None:
    files = 0
    size = 0
    for folder, _subfolders, names in os.walk(root):
        for name in names:
            size += os.stat(os.path.join(folder, name)).st_size
            files += 1
    print(f"{files} files, {size} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
