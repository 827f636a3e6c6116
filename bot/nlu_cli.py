"""`tier0 nlu …`: train the intent model, read one message, and measure how well it reads."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.cli_errors import errors, fail
from bot.config import Settings

if TYPE_CHECKING:
    from nlu.evaluation import EntityReport, IntentReport
    from nlu.training_data import TrainingData
    from nlu.understanding import Interpreter

nlu_app = typer.Typer(help="Intent and entity understanding.", no_args_is_help=True)
console = Console()

DataOption = Annotated[
    list[Path] | None,
    typer.Option("--data", help="NLU YAML file or folder (repeat for several)."),
]


def _load(paths: list[Path] | None, settings: Settings) -> TrainingData:
    from nlu.training_data import BUNDLED_NLU_DATA, NluDataError, load_training_data

    try:
        data = load_training_data(paths or [settings.nlu_data or BUNDLED_NLU_DATA])
    except NluDataError as error:
        fail(str(error))
    for note in data.notes:
        errors.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    return data


def _interpreter(settings: Settings, data: TrainingData) -> Interpreter:
    from bot.runtime import NluBackendError, choose_interpreter, entity_extractor, intent_model
    from nlu.embedding import shared_embedder
    from nlu.understanding import Interpreter

    embedder = shared_embedder()
    model = intent_model(settings, data, embedder)
    builtin = Interpreter(embedder, model, data.synonyms, entities=entity_extractor(settings, data))
    try:
        # With TIER0_NLU_BACKEND=rasa, parse shows what the running Rasa server reads.
        return choose_interpreter(settings, builtin)
    except NluBackendError as error:
        fail(str(error))


@nlu_app.command("train")
def nlu_train(
    data: DataOption = None,
    backend: Annotated[
        str, typer.Option(help="builtin (tier0's model) or rasa (DIET, needs `make rasa`).")
    ] = "builtin",
    epochs: Annotated[int, typer.Option(help="DIET epochs (with --backend rasa).")] = 100,
    force: Annotated[
        bool, typer.Option(help="Retrain the Rasa model even if nothing changed.")
    ] = False,
    min_out_of_scope_recall: Annotated[
        float | None,
        typer.Option(
            "--min-out-of-scope-recall",
            help="Tune the fallback to catch at least this share (0-1) of the held-back "
            "out-of-scope examples; needs an out_of_scope (or oos) intent in the data.",
        ),
    ] = None,
    adapt_layers: Annotated[
        int,
        typer.Option(
            "--adapt-layers",
            help="Read the intents from a copy of the encoder's top 1 or 2 layers fine-tuned "
            "on them (needs torch to train; 0, the default: the shared sentence vector). "
            "2 gained about half a point on the public benchmarks at the same parse cost.",
        ),
    ] = 0,
    validation: Annotated[
        list[Path] | None,
        typer.Option(
            "--validation",
            help="NLU YAML kept apart from the training data (file or folder, repeat for "
            "several): the thresholds are tuned on it. The model is then always retrained.",
        ),
    ] = None,
) -> None:
    """Train the intent model and entity tagger (only if their training data changed)."""
    if backend not in {"builtin", "rasa"}:
        fail(f"--backend must be builtin or rasa, not {backend!r}")
    if backend == "rasa":
        if min_out_of_scope_recall is not None or validation or adapt_layers:
            fail(
                "--min-out-of-scope-recall, --validation and --adapt-layers are for "
                "--backend builtin"
            )
        from bot.rasa_cli import train_with_rasa

        train_with_rasa(data, epochs=epochs, force=force)
        return
    if min_out_of_scope_recall is not None and not 0.0 < min_out_of_scope_recall <= 1.0:
        fail(
            f"--min-out-of-scope-recall is a share between 0 and 1 (such as 0.7), "
            f"not {min_out_of_scope_recall:g}"
        )
    if adapt_layers not in (0, 1, 2):
        fail(f"--adapt-layers is 0, 1 or 2, not {adapt_layers}")
    from bot.runtime import embedder_name, entity_extractor
    from nlu.classifier import (
        OUT_OF_SCOPE_INTENTS,
        ClassifierConfig,
        IntentClassifier,
        load_or_train,
        needs_training,
    )
    from nlu.embedding import shared_embedder
    from nlu.tagger import needs_tagger_training

    settings = Settings()
    training = _load(data, settings)
    if min_out_of_scope_recall is not None and not set(OUT_OF_SCOPE_INTENTS) & set(
        training.intents
    ):
        fail(
            "--min-out-of-scope-recall needs out-of-scope examples: the training data has "
            f"no {' or '.join(OUT_OF_SCOPE_INTENTS)} intent"
        )
    held_back = _load(validation, settings) if validation else None
    if held_back is not None:
        unknown = sorted(set(held_back.intents) - set(training.intents))
        if unknown:
            fail(f"the --validation examples have intents the training data lacks: {unknown}")
    config = ClassifierConfig(
        min_out_of_scope_recall=min_out_of_scope_recall,
        adapt_last_layer=adapt_layers > 0,
        adapted_layers=max(1, adapt_layers),
    )
    embedder = shared_embedder()
    name = embedder_name(embedder)
    directory = settings.nlu_model_dir
    if held_back is not None:
        stale = True
        model = IntentClassifier.train(
            training, embedder, embedder_name=name, config=config, validation=held_back
        )
        model.save(directory)
    else:
        stale = needs_training(directory, training, name, config)
        model = load_or_train(directory, training, embedder, name, config=config)
    what = "trained" if stale else "unchanged, reused"
    report = model.report
    tuned_on = "validation examples" if held_back is not None else "held-back examples"
    held_out = (
        f"; accuracy {report.held_out_accuracy:.1%} on {report.held_out} {tuned_on}"
        if report.held_out_accuracy is not None
        else ""
    )
    console.print(
        f"Intent model {model.fingerprint} ({what}): {len(model.intents)} intents, "
        f"{len(training.examples)} examples{held_out}; falls back below "
        f"{model.fallback_threshold:.3f} confidence or a top-two gap under "
        f"{model.ambiguity_threshold:.3f}; saved in {directory}"
    )
    if held_back is not None and report.held_out_accuracy is None:
        errors.print(
            f"[yellow]note:[/yellow] {len(held_back.examples)} validation examples are too "
            "few to tune the thresholds on: the untuned defaults are used"
        )
    tagger_stale = needs_tagger_training(directory, training)
    notes: list[str] = []
    entities = entity_extractor(settings, training, notes)
    for note in notes:
        errors.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    tagger = entities.tagger
    if tagger is not None:
        console.print(
            f"Entity tagger ({'trained' if tagger_stale else 'unchanged, reused'}): "
            f"{', '.join(tagger.entities)} from {tagger.report.get('annotated_examples')} "
            f"annotated examples; saved in {directory}"
        )


@nlu_app.command("parse")
def nlu_parse(
    text: Annotated[str, typer.Argument(help="The message to interpret.")],
    data: DataOption = None,
) -> None:
    """Print what a message means, as JSON shaped like Rasa's /model/parse."""
    if not text.strip():
        fail("the message is empty: give the text to interpret")
    settings = Settings()
    interpreter = _interpreter(settings, _load(data, settings))
    sys.stdout.write(json.dumps(interpreter.parse(text), indent=2, ensure_ascii=False) + "\n")


@nlu_app.command("eval")
def nlu_eval(
    data: DataOption = None,
    test: Annotated[
        list[Path] | None, typer.Option(help="Held-out NLU YAML to test on (file or folder).")
    ] = None,
    cross_validation: Annotated[
        int | None, typer.Option("--cross-validation", help="K-fold cross-validation.")
    ] = None,
    report: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = Path(
        "nlu_eval_report.json"
    ),
) -> None:
    """Per-intent precision/recall/F1, the most confused pairs, entity scores."""
    from bot.runtime import embedder_name
    from nlu.classifier import IntentClassifier
    from nlu.embedding import shared_embedder
    from nlu.entities import EntityExtractor
    from nlu.evaluation import (
        cross_validate,
        cross_validate_entities,
        entity_report,
        intent_report,
        predict_examples,
        score_entities,
    )
    from nlu.tagger import MIN_ANNOTATED_EXAMPLES, EntityTagger, annotated_examples

    if (test is None) == (cross_validation is None):
        fail("give either --test TEST or --cross-validation K")
    if cross_validation is not None and cross_validation < 2:
        fail("--cross-validation needs at least 2 folds")
    settings = Settings()
    training = _load(data, settings)
    embedder = shared_embedder()
    if test is not None:
        held_out = _load(test, settings)
        model = IntentClassifier.train(training, embedder, embedder_name=embedder_name(embedder))
        examples = held_out.examples
        predictions = predict_examples(model, examples, embedder)
        how = f"trained on {len(training.examples)}, tested on {len(examples)} examples"
    else:
        assert cross_validation is not None
        smallest = min(
            sum(1 for e in training.examples if e.intent == intent) for intent in training.intents
        )
        if smallest < cross_validation:
            errors.print(
                f"[yellow]note:[/yellow] an intent has only {smallest} examples: "
                f"some of the {cross_validation} folds lack it"
            )
        examples, predictions = cross_validate(training, embedder, cross_validation)
        how = f"{cross_validation}-fold cross-validation on {len(examples)} examples"

    intents = intent_report(examples, predictions)
    entities = None
    if training.entity_names and any(e.entities for e in examples):
        entity_types = set(training.entity_names)
        if test is not None:
            # As the assistant would find them: lookups, regexes, built-in patterns, tagger.
            tagger = (
                EntityTagger.train(training)
                if annotated_examples(training) >= MIN_ANNOTATED_EXAMPLES
                else None
            )
            extractor = EntityExtractor.from_training_data(training, tagger=tagger)
            entities = entity_report(examples, extractor.extract, entity_types=entity_types)
        else:
            assert cross_validation is not None
            # Per fold, so no example's own annotation (a lookup value, the tagger's
            # training) grades it.
            entities = score_entities(
                cross_validate_entities(training, cross_validation), entity_types=entity_types
            )
    _print_intents(intents, how)
    if entities is not None:
        _print_entities(entities)
    result = {
        "how": how,
        "intent_evaluation": intents.as_json(),
        "entity_evaluation": entities.as_json() if entities is not None else None,
    }
    try:
        report.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    except OSError as error:
        fail(f"cannot write the report to {report}: {error.strerror}")
    console.print(f"Report written to {report}")


def _print_intents(report: IntentReport, how: str) -> None:
    table = Table(title=f"Intents ({escape(how)})")
    for column in ("intent", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "intent" else "right")
    for name, scores in sorted(report.per_intent.items(), key=lambda item: item[1].f1):
        table.add_row(
            escape(name),
            f"{scores.precision:.3f}",
            f"{scores.recall:.3f}",
            f"{scores.f1:.3f}",
            str(scores.support),
        )
    console.print(table)
    console.print(
        f"accuracy {report.accuracy:.3f} · macro F1 {report.macro_f1:.3f} · "
        f"weighted F1 {report.weighted_f1:.3f} · fallback {report.fallback_rate:.1%}"
    )
    if report.confused_pairs:
        confused = Table(title="Most confused")
        for column in ("intent", "predicted as", "count"):
            confused.add_column(column, justify="right" if column == "count" else "left")
        for pair in report.confused_pairs:
            confused.add_row(escape(pair.intent), escape(pair.predicted), str(pair.count))
        console.print(confused)


def _print_entities(report: EntityReport) -> None:
    table = Table(title="Entities (exact span)")
    for column in ("entity", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "entity" else "right")
    for name, scores in report.per_entity.items():
        table.add_row(
            escape(name),
            f"{scores.precision:.3f}",
            f"{scores.recall:.3f}",
            f"{scores.f1:.3f}",
            str(scores.support),
        )
    table.add_row("all", f"{report.precision:.3f}", f"{report.recall:.3f}", f"{report.f1:.3f}", "")
    console.print(table)
