r"""Hyperparameter search for a distillation method, selected on validation accuracy only.

A grid of settings, each run on every seed (= split) with the seed's cached teacher; the chosen
setting is the one with the best **mean validation** accuracy over the seeds (ties go to the
earlier setting in grid order), and its test accuracy is what a table may report. Test accuracy
is recorded for every setting but never consulted by the choice.

Keys of the grid are either student options (those of :func:`student_defaults`: ``dropout``,
``lr``, ``weight_decay``, ...) or keyword arguments of the method's constructor (NOSMOG's
``adv_eps``, ``rsd_weight``, ...). Results are written after every (setting, seed) run, atomically,
so an interrupted search resumes where it stopped.

    >>> grid = parse_grid(["adv_eps=0.02,0.04", "dropout=0.5,0.6"])
    >>> [dict(s) for s in expand_grid(grid)][:2]
    [{'adv_eps': 0.02, 'dropout': 0.5}, {'adv_eps': 0.02, 'dropout': 0.6}]
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geokd.seed import seed_everything
from graphkd.distill.student import DistillContext, student_defaults, train_student


def parse_value(text: str) -> Any:
    """A command-line value as int, float, bool (``true``/``false``), ``None`` (``none``) or the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    return text


def parse_grid(entries: Sequence[str]) -> dict[str, list]:
    """``["key=v1,v2", ...]`` to ``{key: [v1, v2]}``; values become int, float, bool, None or str."""
    grid: dict[str, list] = {}
    for entry in entries:
        key, sep, values = entry.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ValueError(f"grid entries must look like key=value1,value2, got {entry!r}")
        if key in grid:
            raise ValueError(f"grid key {key!r} is given twice")
        parsed = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
        if not parsed:
            raise ValueError(f"grid entry {entry!r} has no values")
        bad = [v for v in parsed if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise ValueError(f"grid key {key!r} has non-finite values {bad}")
        grid[key] = parsed
    return grid


def expand_grid(grid: dict[str, list]) -> list[dict]:
    """Every combination, the last key varying fastest; an empty grid is one empty setting."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def split_options(setting: dict, method_class: type) -> tuple[dict, dict]:
    """``(method_kwargs, student_kwargs)`` of a setting; a key neither knows raises an error naming it."""
    student_keys = set(student_defaults(None))
    accepted = set(inspect.signature(method_class.__init__).parameters) - {"self"}
    method_kwargs, student_kwargs = {}, {}
    for key, value in setting.items():
        if key in student_keys:
            student_kwargs[key] = value
        elif key in accepted:
            method_kwargs[key] = value
        else:
            raise ValueError(f"grid key {key!r} is neither a student option ({sorted(student_keys)}) "
                             f"nor an argument of {method_class.__name__} ({sorted(accepted)})")
    return method_kwargs, student_kwargs


def setting_key(setting: dict) -> str:
    """A stable text key of a setting (sorted JSON), used in the results file."""
    return json.dumps(setting, sort_keys=True)


def select_by_validation(rows: list[dict]) -> int:
    """Index of the row with the highest ``val_mean`` (the first of equals)."""
    if not rows:
        raise ValueError("no settings to choose from")
    best = max(row["val_mean"] for row in rows)
    return next(i for i, row in enumerate(rows) if row["val_mean"] == best)


def _load(path: Path | None, header: dict) -> dict:
    if path is None or not path.is_file():
        return {}
    try:
        stored = json.loads(path.read_text())
        runs = stored["runs"]
        if not isinstance(runs, dict):
            raise TypeError("'runs' is not an object")
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a search results file ({error}); remove it or pass another path") from error
    for name in ("method", "dataset"):
        if stored.get(name) != header[name]:
            raise ValueError(f"{path} holds a search of {name} {stored.get(name)!r}, not {header[name]!r}; "
                             "pass another results path")
    return runs


def _save(path: Path | None, runs: dict, header: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({**header, "runs": runs}, indent=2) + "\n")
    os.replace(temporary, path)


def merge_results(sources: Sequence[str | os.PathLike], target: str | os.PathLike) -> int:
    """Join the results files of a search split between processes (``--first-seed``) into ``target``.

    Every file must hold a search of the same method and dataset; a run present in two files with
    different scores is refused. ``target`` may be one of the sources. Returns the number of runs.
    """
    runs: dict = {}
    header: dict | None = None
    for source in sources:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"results file {path} does not exist")
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not a search results file ({error})") from error
        if header is None:
            header = {"method": stored.get("method"), "dataset": stored.get("dataset"), "grid": stored.get("grid")}
        runs_here = _load(path, header)  # the checks of a resumed search
        for key, per_seed in runs_here.items():
            for seed, scores in per_seed.items():
                known = runs.setdefault(key, {}).get(seed)
                if known is not None and known != scores:
                    raise ValueError(f"{path}: seed {seed} of setting {key} differs from an earlier file's")
                runs[key][seed] = scores
    if header is None:
        raise ValueError("sources must name at least one results file")
    _save(Path(target), runs, header)
    return sum(len(per_seed) for per_seed in runs.values())


def grid_search(method: str | type, contexts: Callable[[int], DistillContext], seeds: Sequence[int],
                grid: dict[str, list], dataset: str | None = None, results: str | os.PathLike | None = None,
                log: Callable[[str], None] | None = None) -> dict:
    r"""Run every setting of ``grid`` on every seed and choose one on mean validation accuracy.

    Args:
        method (str or type): a name of :data:`graphkd.distill.run.METHODS` or a
            :class:`DistillMethod` subclass.
        contexts (callable): ``seed -> DistillContext`` (data, split, teacher) for each seed; called
            once per seed, the context is shared by that seed's settings (so a method's per-split
            preparation, such as NOSMOG's DeepWalk, is computed once).
        seeds (sequence of int): the seeds (splits).
        grid (dict): key -> candidate values (see :func:`parse_grid`).
        dataset (str, optional): picks the student defaults (:func:`student_defaults`).
        results (path, optional): a JSON file holding every finished run; reruns skip them.
        log (callable, optional): receives one line per finished run.

    Returns:
        ``{"rows": [...], "chosen": index, "grid": grid}``, one row per setting in grid order with
        its ``setting``, ``val_mean``/``val_std``, ``test_mean``/``test_std`` (plus ``test_ind`` /
        ``prod`` when the setting is inductive) over seeds, in %.
    """
    if isinstance(method, str):
        from graphkd.distill.run import method_class as registered

        method_class = registered(method)
    else:
        method_class = method
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    settings = expand_grid(grid)
    options = [split_options(setting, method_class) for setting in settings]  # every key checked up front
    path = None if results is None else Path(results)
    header = {"method": method_class.__name__, "dataset": dataset, "grid": grid}
    runs = _load(path, header)
    for seed in seeds:
        todo = [i for i, s in enumerate(settings) if str(seed) not in runs.get(setting_key(s), {})]
        if not todo:
            continue
        ctx = contexts(seed)
        for i in todo:
            method_kwargs, student_kwargs = options[i]
            seed_everything(seed)
            result = train_student(method_class(**method_kwargs), ctx,
                                   **{**student_defaults(dataset), **student_kwargs})
            scores = {k: 100 * v for k, v in result.scores.items()}
            runs.setdefault(setting_key(settings[i]), {})[str(seed)] = scores
            _save(path, runs, header)
            if log is not None:
                log(f"seed {seed} {settings[i]}: " + " ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    rows = []
    for setting in settings:
        per_seed = [runs[setting_key(setting)][str(seed)] for seed in seeds]
        row = {"setting": setting, "seeds": len(per_seed)}
        for metric in per_seed[0]:
            values = [entry[metric] for entry in per_seed]
            row[f"{metric}_mean"], row[f"{metric}_std"] = statistics.fmean(values), statistics.pstdev(values)
        rows.append(row)
    return {"rows": rows, "chosen": select_by_validation(rows), "grid": grid}
