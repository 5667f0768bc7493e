"""``modelmon profile``: build and inspect reference profiles (docs/quality.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from modelmon.config import ConfigError
from modelmon.hookspecs import hookimpl


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("profile", help="build or show a reference profile for drift and data checks")
    p.set_defaults(func=None, _parser=p)
    commands = p.add_subparsers(dest="profile_command", metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="profile training data (CSV or Parquet) into profile.json",
        description="Profile training data: per feature its type, missing rate, range and "
        "quantile bins (numeric) or top-K categories (categorical); optionally the model's "
        "predictions and scores from columns of the same file.",
    )
    build.add_argument("--data", required=True, type=Path, help="train.csv or train.parquet")
    build.add_argument("--model", required=True, help="model name recorded in the profile")
    build.add_argument("--out", required=True, type=Path, help="where to write profile.json")
    build.add_argument("--bins", type=int, default=10, help="quantile bins per numeric feature (default 10)")
    build.add_argument("--top-k", type=int, default=20, help="categories kept per categorical feature (default 20)")
    build.add_argument("--prediction-column", help="column holding the model's predictions")
    build.add_argument("--score-column", action="append", default=[],
                       help="column holding the score; repeat for one column per class probability")
    build.add_argument("--task", choices=("classification", "regression"),
                       help="kind of predictions (default: guessed from the prediction column)")
    build.add_argument("--categorical", default="", help="comma-separated columns to treat as categorical")
    build.add_argument("--exclude", default="", help="comma-separated columns to leave out (ids, targets)")
    build.add_argument("--importances", type=Path,
                       help="JSON object of feature -> importance (drift tracks the top-K)")
    build.set_defaults(func=run_build)

    show = commands.add_parser("show", help="print a profile's features as a table")
    show.add_argument("path", type=Path, help="profile.json")
    show.set_defaults(func=run_show)


# The optional dependencies of reading training data, an extra in pyproject.toml.
PARQUET_EXTRA = "pip install 'modelmon[parquet]'"


def _read_table(path: Path) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError(
            f"--data: reading {path} needs pandas (and pyarrow for Parquet), which modelmon "
            f"does not install by default; {PARQUET_EXTRA}"
        ) from None
    suffix = path.suffix.lower()
    if not path.exists():
        raise ConfigError(f"--data: {path} does not exist")
    try:
        if suffix in (".parquet", ".pq"):
            try:
                return pd.read_parquet(path)
            except ImportError:
                raise ConfigError(
                    f"--data: reading {path} needs pyarrow; {PARQUET_EXTRA}, or export the "
                    "data as CSV"
                ) from None
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except ConfigError:
        raise
    except Exception as exc:  # pandas raises many types for malformed files
        raise ConfigError(f"--data: cannot read {path}: {exc}") from None
    raise ConfigError(f"--data: expected a .csv, .tsv or .parquet file, got {path.name}")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def run_build(args: argparse.Namespace) -> int:
    from modelmon.exporters.quality.profile import Profile, ProfileError

    frame = _read_table(args.data)
    if len(frame) == 0:
        raise ConfigError(f"--data: {args.data} has no rows; a profile needs training data")
    columns = [str(c) for c in frame.columns]
    used = set(_names(args.exclude))
    for flag, names in (("--exclude", _names(args.exclude)),
                        ("--categorical", _names(args.categorical)),
                        ("--score-column", args.score_column),
                        ("--prediction-column", [args.prediction_column] if args.prediction_column else [])):
        unknown = [n for n in names if n not in columns]
        if unknown:
            raise ConfigError(
                f"{flag}: {', '.join(unknown)} not among the columns of {args.data} "
                f"({', '.join(columns[:20])})"
            )
    predictions = scores = None
    if args.prediction_column:
        predictions = frame[args.prediction_column].to_numpy()
        used.add(args.prediction_column)
    if args.score_column:
        try:
            block = frame[args.score_column].to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise ConfigError(
                f"--score-column: {', '.join(args.score_column)} must hold numbers "
                "(the model's scores or class probabilities)"
            ) from None
        scores = block[:, 0] if block.shape[1] == 1 else block
        used.update(args.score_column)
    importances = None
    if args.importances:
        try:
            importances = json.loads(args.importances.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--importances: cannot read {args.importances}: {exc}") from None
        if not isinstance(importances, dict):
            raise ConfigError("--importances: expected a JSON object of feature name -> number")
    features = frame[[c for c in frame.columns if str(c) not in used]]
    if features.shape[1] == 0:
        raise ConfigError(
            "--exclude: no feature columns are left to profile; exclude fewer columns"
        )
    try:
        profile = Profile.from_data(
            features, model=args.model, predictions=predictions, scores=scores, task=args.task,
            bins=args.bins, top_k=args.top_k, categorical=_names(args.categorical),
            importances=importances,
        )
    except ProfileError as exc:
        raise ConfigError(str(exc)) from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    profile.save(args.out)
    kinds = [f.kind for f in profile.features]
    print(
        f"wrote {args.out}: {len(kinds)} features ({kinds.count('numeric')} numeric, "
        f"{kinds.count('categorical')} categorical) from {profile.rows} rows"
        + (", with predictions" if profile.prediction else "")
        + (", with scores" if profile.score else "")
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    from modelmon.exporters.quality.profile import Profile, ProfileError

    try:
        profile = Profile.load(args.path)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from None
    rows = [("FEATURE", "TYPE", "MISSING", "BINS", "RANGE / TOP CATEGORIES")]
    records = list(profile.features)
    records += [r for r in (profile.prediction, profile.score) if r is not None]
    for f in records:
        detail = (
            f"[{f.min:g}, {f.max:g}]" if f.kind == "numeric" and f.min is not None
            else ", ".join(f.categories[:5]) + (" ..." if len(f.categories) > 5 else "")
        )
        rows.append((f.name, f.kind, f"{f.missing_rate:.2%}", str(f.bins), detail))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] + "\n")
    return 0


@hookimpl
def modelmon_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register(subparsers)
