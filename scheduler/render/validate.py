"""The result of ``review-scheduler validate`` in every output format."""

from __future__ import annotations

from scheduler.render import Registry, RenderOptions
from scheduler.render.check import SCHEMA_VERSION
from scheduler.render.common import (
    capped_annotations,
    json_document,
    problem_annotation,
    problem_line,
    validation_summary,
)
from scheduler.results import ValidationResult

VALIDATE_FORMATS: Registry[ValidationResult] = Registry("the validation result")


@VALIDATE_FORMATS.register("text", "one line per problem")
def render_validate_text(result: ValidationResult, options: RenderOptions) -> list[str]:
    lines = [problem_line(p) for f in result.files for p in f.problems]
    lines.append(validation_summary(result))
    return ["\n".join(lines) + "\n"]


@VALIDATE_FORMATS.register("json", "every file and its problems")
def render_validate_json(result: ValidationResult, options: RenderOptions) -> list[str]:
    document = {
        "schema_version": SCHEMA_VERSION,
        "as_of": result.as_of.isoformat(),
        **({"timezone": result.timezone} if result.timezone is not None else {}),
        "summary": result.totals(),
        "files": [
            {"path": f.path, "valid": f.valid, "problems": [p.to_json() for p in f.problems]}
            for f in result.files
        ],
    }
    return [json_document(document)]


@VALIDATE_FORMATS.register("github", "GitHub Actions annotations, at most 10 of each kind")
def render_validate_github(result: ValidationResult, options: RenderOptions) -> list[str]:
    lines = capped_annotations([problem_annotation(p) for f in result.files for p in f.problems])
    lines.append(validation_summary(result))
    return ["\n".join(lines) + "\n"]
