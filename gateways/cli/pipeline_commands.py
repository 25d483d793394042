"""`crm pipeline define | list | show | rename-stage | insert-stage | set-reminders | set-forecast`: set up a database's pipelines without
writing events by hand (issue 12). The services are imported when a command runs (see gateways/cli/main.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape  # typer reads help as Rich markup: "[[pipeline]]" would vanish

from gateways.cli.common import console, crm_application, fail

if TYPE_CHECKING:
    from domain.pipeline import Pipeline
    from services.commands import DefinePipeline

pipeline_app = typer.Typer(help="Pipelines: their stages (key and label), defined and changed by commands.",
                           no_args_is_help=True)
Key = Annotated[str, typer.Argument(help="The pipeline's key, e.g. sales.")]
Actor = Annotated[str, typer.Option(help="Who did it (recorded as the event's actor).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ExpectedVersion = Annotated[int | None, typer.Option(min=1, help="Refuse if the pipeline is no longer at this "
                                                                 "version (see `crm pipeline show`).")]


@pipeline_app.command()
def define(
    key: Annotated[str | None, typer.Argument(help="The new pipeline's key (lower-case letters, digits, _).")] = None,
    name: Annotated[str | None, typer.Option(help="Its name, e.g. \"续约 / Renewals\".")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="An open stage as key=label, in order (at least two; "
                                                         "won and lost are implied). Repeat it.")] = None,
    file: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, readable=True,
                                              help=escape("A TOML file of [[pipeline]] tables (key, name, stages = "
                                                          "[{key, label}, …]), one or several."))] = None,
    actor: Actor = "admin",
) -> None:
    """Define a pipeline from options, or every pipeline of a TOML file. All are checked before any is written;
    one already defined the same way is left as it is (a setup script can run twice)."""
    if file and (key or name or stage):
        raise typer.BadParameter("give either --file or KEY with --name and --stage", param_hint="--file")
    commands = _from_file(file) if file else [_from_options(key, name, stage or [])]
    from domain.base import Meta

    with crm_application() as crm:
        new = [command for command in commands if not _already_defined(crm, command)]
        for command in new:
            crm.handle(command, Meta.now(actor))
            console.print(f"Defined pipeline {command.key} ({len(command.stages)} open stages).")


def _from_options(key: str | None, name: str | None, stages: list[str]) -> DefinePipeline:
    if not key or not name:
        raise typer.BadParameter("a pipeline needs KEY and --name (or --file)", param_hint="KEY")
    pairs = [text.split("=", 1) for text in stages]
    if bad := [text for text, pair in zip(stages, pairs) if len(pair) != 2]:
        raise typer.BadParameter(f"{bad[0]!r} is not key=label", param_hint="--stage")
    return _commands({"pipeline": [{"key": key, "name": name,
                                    "stages": [{"key": k, "label": label} for k, label in pairs]}]})[0]


def _from_file(file: Path) -> list[DefinePipeline]:
    try:
        with file.open("rb") as source:
            document = tomllib.load(source)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise fail(f"{file} is not valid TOML: {error}") from None
    return _commands(document, f"{file}: ")


def _commands(document: dict[str, Any], where: str = "") -> list[DefinePipeline]:
    from services.commands.pipelines import PipelineDocumentError, pipelines_of_document

    try:
        return pipelines_of_document(document)
    except PipelineDocumentError as error:
        raise fail(f"{where}{error}; nothing was defined") from None


def _already_defined(crm: Any, command: DefinePipeline) -> bool:
    """True for a pipeline defined exactly so already; raises for one defined otherwise (nothing written)."""
    from domain.pipeline import Pipeline, check_remind_after_days, pipeline_id
    from services.application import NotFound

    try:
        existing = crm.get(Pipeline, pipeline_id(command.key))
    except NotFound:
        return False
    wanted = [{"key": s.key, "label": s.label, **({"remind_after_days": check_remind_after_days(s.key, s.remind_after_days)}
                                                 if s.remind_after_days else {})} for s in command.stages]
    if existing.name != command.name or existing.stages != wanted or not _same_forecasts(existing, command):
        raise fail(f"pipeline {command.key!r} is already defined otherwise (see `crm pipeline show {command.key}`; "
                   "change it with rename-stage or insert-stage); nothing was defined")
    console.print(f"Pipeline {command.key} is already defined so; left as it is.")
    return True


def _same_forecasts(existing: Pipeline, command: DefinePipeline) -> bool:
    """Whether the stages' forecast defaults the definition gives are the ones the pipeline has."""
    for stage in command.stages:
        has = existing.stage_forecast(stage.key)
        if stage.probability not in (None, has.probability) or stage.forecast_category not in (None, has.category):
            return False
    return True


@pipeline_app.command("list")
def list_pipelines(as_json: AsJson = False) -> None:
    """Every pipeline of the log with its stages, exact now (also one defined a moment ago)."""
    from rich.table import Table

    from gateways.cli.common import read_store
    from services.pipeline_catalogue import defined_pipelines

    with crm_application() as crm, read_store(crm) as store:
        pipelines = defined_pipelines(crm, store)
    if as_json:
        typer.echo(orjson.dumps({"pipelines": [_view(p) for p in pipelines]}, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("Key", "Name", "Open stages (then won or lost)", "Version", title="Pipelines", title_justify="left")
    for p in pipelines:
        table.add_row(p.key, p.name, " → ".join(s["label"] for s in p.stages), str(p.version))
    console.print(table)


@pipeline_app.command()
def show(key: Key, as_json: AsJson = False) -> None:
    """One pipeline: its stages in order with keys and labels, and its version."""
    from rich.table import Table

    with crm_application() as crm:
        pipeline = crm.pipeline(key)
    if as_json:
        typer.echo(orjson.dumps(_view(pipeline), option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("#", "Stage key", "Label", "Probability", "Forecast category",
                  title=f"Pipeline {pipeline.key} — {pipeline.name} (version {pipeline.version})", title_justify="left")
    for number, stage in enumerate(pipeline.stages, 1):
        forecast = pipeline.stage_forecast(stage["key"])
        table.add_row(str(number), stage["key"], stage["label"], f"{forecast.probability} %", forecast.category)
    for terminal in ("won", "lost"):
        table.add_row("", terminal, pipeline.label(terminal))
    console.print(table)


@pipeline_app.command("rename-stage")
def rename_stage(
    key: Key,
    stage: Annotated[str, typer.Argument(help="The stage's key (it never changes).")],
    label: Annotated[str, typer.Argument(help="Its new label.")],
    expected_version: ExpectedVersion = None,
    actor: Actor = "admin",
) -> None:
    """Give a stage a new label; deals in it stay where they are."""
    from services.commands import RenameStage

    _change(RenameStage(key, stage, label, expected_version=expected_version), actor,
            f"Stage {stage} of pipeline {key} is now labelled {label!r}.")


@pipeline_app.command("insert-stage")
def insert_stage(
    key: Key,
    stage: Annotated[str, typer.Argument(help="The new stage's key.")],
    label: Annotated[str, typer.Argument(help="Its label.")],
    after: Annotated[str | None, typer.Option(help="Insert after this stage (default: first).")] = None,
    expected_version: ExpectedVersion = None,
    actor: Actor = "admin",
) -> None:
    """Insert a new open stage into a pipeline (after --after, or first)."""
    from services.commands import InsertStage

    _change(InsertStage(key, stage, label, after, expected_version=expected_version), actor,
            f"Inserted stage {stage} into pipeline {key}{f' after {after}' if after else ' first'}.")


@pipeline_app.command("set-reminders")
def set_reminders(
    key: Key,
    stage: Annotated[str, typer.Argument(help="The stage's key.")],
    days: Annotated[list[float] | None, typer.Argument(help="Remind the owner after an item has stayed these many "
                                                            "days in the stage, ascending (e.g. 3 7; 0.5 is 12 "
                                                            "hours); none removes them.")] = None,
    expected_version: ExpectedVersion = None,
    actor: Actor = "admin",
) -> None:
    """Set a stage's dwell thresholds: `crm reminders run` reminds the owner of each item in it once per
    threshold (items in it now included)."""
    from services.commands import SetStageReminders

    whole = [int(d) if d.is_integer() else d for d in days or []]
    _change(SetStageReminders(key, stage, whole, expected_version=expected_version), actor,
            f"Stage {stage} of pipeline {key} reminds after {', '.join(map(str, whole)) or 'no'} days.")  # as labelled


@pipeline_app.command("set-forecast")
def set_forecast(
    key: Key,
    stage: Annotated[str, typer.Argument(help="The stage's key.")],
    probability: Annotated[int, typer.Option(min=0, max=100, help="Default probability of its deals, 0–100 %.")],
    category: Annotated[str, typer.Option(help="Default forecast category: pipeline, best_case, commit or "
                                               "omitted.")],
    expected_version: ExpectedVersion = None,
    actor: Actor = "admin",
) -> None:
    """Set a stage's forecast defaults, for its deals that set none themselves."""
    from services.commands.forecasts import SetStageForecast

    _change(SetStageForecast(key, stage, probability, category, expected_version=expected_version), actor,
            f"Stage {stage} of pipeline {key} now defaults to {probability} % {category}.")


def _change(command: Any, actor: str, done: str) -> None:
    from domain.base import Meta

    with crm_application() as crm:
        crm.pipeline(command.key)  # an unknown key is named as such, not by its derived id
        crm.handle(command, Meta.now(actor))
    console.print(done)


def _view(pipeline: Pipeline) -> dict[str, Any]:
    """The JSON of a pipeline, as HTTP's GET /pipelines/{key} gives it."""
    from gateways.http.serializers import pipeline_view

    return pipeline_view(pipeline)
