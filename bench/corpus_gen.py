"""Generate a library of seed-sized documents with varied metadata, for the benchmark.

Every document carries the body of the seed page (about 10 KB) under frontmatter drawn from a
fixed random sequence, so the same N always gives the same library. Most documents are valid;
a few have the mistakes editors make (impossible dates, ambiguous frequencies, misspelt keys,
missing fields), so the report exercises every state and problems are rendered too.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_6b193bba7092f18d.txt"
GENERATOR_VERSION = 1
DOCS_PER_FOLDER = 500

CONFIG = """\
# The configuration the benchmark runs with: the shipped defaults, a content root of docs/,
# and routing rules of the kind a real team writes.
[content]
root = "docs"

[routing]
default = ["content-team@example.org"]

[routing.aliases]
"#nci-team" = ["nci-editor@example.org"]
"#web-team" = ["web-lead@example.org", "web-editor@example.org"]

[[routing.rules]]
name = "NCI pages"
match = { source = "NCI" }
editors = ["#nci-team"]

[[routing.rules]]
name = "Breast and lung cancer"
match = { cancerTypes = ["breast", "lung"] }
paths = ["section-0*/**"]
editors = ["oncology@example.org"]

[store]
url = "sqlite:///.review-scheduler/state.sqlite3"
"""

SOURCES = ["NCI", "NHS", "CDC", "WHO", "Mayo Clinic", "MedlinePlus"]
FREQUENCIES = [
    "quarterly",
    "annually",
    "semiannually",
    "monthly",
    "6 months",
    "every 2 years",
    "P90D",
    "P1Y6M",
    "90 days",
]
LICENSES = ["public_domain", "CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0", "CC-BY-NC-4.0"]
LANGUAGES = ["en", "es", "es-419", "pt-BR", "fr", "de"]
CANCER_TYPES = ["breast", "lung", "pancreatic", "liver", "colorectal", "skin", "prostate"]
TAGS = ["cancer-type", "treatment", "screening", "research", "coping", "prevention"]
OWNERS = ["#web-team", "alice@example.org", "bob@example.org", "#nci-team", "not an address"]


def seed_body() -> str:
    text = SEED.read_text(encoding="utf-8")
    return text.split("\n---\n", 1)[1]


def frontmatter(rng: random.Random, index: int) -> str:
    """The frontmatter of document ``index``: valid most of the time, with occasional mistakes."""
    year = rng.choice([2024, 2025, 2026])
    fields: dict[str, str] = {
        "audienceLevel": rng.choice(["patient", "caregiver", "health professional"]),
        "cancerTypes": "\n" + "".join(f"- {t}\n" for t in rng.sample(CANCER_TYPES, 3)).rstrip(),
        "citation": f"{rng.choice(SOURCES)}, {year}",
        "language": rng.choice(LANGUAGES),
        "lastReviewed": f"'{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}'",
        "license": rng.choice(LICENSES),
        "reviewFrequency": rng.choice(FREQUENCIES),
        "source": rng.choice(SOURCES),
        "sourceType": f"0{rng.randint(1, 4)}_{rng.choice(['nci_core', 'partner', 'web'])}",
        "status": rng.choices(["active", "draft", "archived", "retired"], [85, 5, 5, 5])[0],
        "tags": "\n" + "".join(f"- {t}\n" for t in rng.sample(TAGS, 2)).rstrip(),
        "title": f"Document {index} - {rng.choice(CANCER_TYPES).title()} cancer information",
        "url": f"https://www.example.org/pages/{index}",
        "version": f"v{rng.randint(1, 5)}",
    }
    if rng.random() < 0.3:
        fields["owner"] = rng.choice(OWNERS)
    mistake = rng.random()
    if mistake < 0.01:
        fields["lastReviewed"] = f"'{year}-02-30'"  # not a real date
    elif mistake < 0.02:
        fields["reviewFrequency"] = "biannually"  # ambiguous
    elif mistake < 0.03:
        fields["lastReveiwed"] = fields.pop("lastReviewed")  # misspelt key
    elif mistake < 0.04:
        del fields["license"]
    elif mistake < 0.045:
        fields["lastReviewed"] = "'2099-01-01'"  # in the future
    lines = "".join(
        f"{key}:{value}\n" if value.startswith("\n") else f"{key}: {value}\n"
        for key, value in sorted(fields.items())
    )
    return f"---\n{lines}---\n"


def generate(folder: Path, documents: int, body: str | None = None) -> Path:
    """Write the library (``folder/docs``) and its config; reuse it when it is already there.

    ``body`` replaces the seed page's body under every document (tests use a short one: only
    the frontmatter is ever read)."""
    marker = folder / "corpus.txt"
    wanted = f"generator {GENERATOR_VERSION}, {documents} documents, body {body is None}\n"
    if marker.is_file() and marker.read_text() == wanted:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "config").mkdir(parents=True)
    (folder / "config" / "scheduler.toml").write_text(CONFIG)
    body = seed_body() if body is None else body
    rng = random.Random(20260101)
    for index in range(documents):
        section = folder / "docs" / f"section-{index // DOCS_PER_FOLDER:03d}"
        if index % DOCS_PER_FOLDER == 0:
            section.mkdir(parents=True)
        path = section / f"page-{index:06d}.md"
        path.write_text(frontmatter(rng, index) + body, encoding="utf-8")
    marker.write_text(wanted)
    return folder


def change_some(folder: Path, fraction: float, round_: int) -> list[Path]:
    """Edit ``fraction`` of the documents as an editor would: a new review date, same body."""
    docs = sorted((folder / "docs").glob("section-*/page-*.md"))
    rng = random.Random(round_)
    chosen = rng.sample(docs, max(1, int(len(docs) * fraction)))
    for path in chosen:
        text = path.read_text(encoding="utf-8")
        head, sep, rest = text.partition("\nlastReviewed: ")
        if sep:
            new_date = f"'2026-{1 + round_ % 12:02d}-{1 + round_ % 28:02d}'"
            rest = new_date + "\n" + rest.split("\n", 1)[1]
            text = f"{head}{sep}{rest}"
        else:
            text = text.replace("\nversion: ", "\nversion: r", 1)
        path.write_text(text, encoding="utf-8")
    return chosen
