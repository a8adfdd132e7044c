"""Code identity across modules: a task's snapshot covers all of the user's own code it reaches.

Modules are written as real files into a directory on ``sys.path`` (a script beside its
``helpers.py``, a local package, a third module of constants), imported, edited and imported
afresh, the way a user edits a project between two runs. Third-party code is a tiny distribution
"installed" into its own ``sys.path`` directory (a package plus a ``*.dist-info`` directory,
which is all ``importlib.metadata`` looks at) at version 1.0, then 2.0.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molexp.workflow import Caching, MemoryCacheStore, TaskStatus, workflow
from molexp.workflow.snapshot import TaskSnapshot

_counter = itertools.count()


class Project:
    """A directory on ``sys.path`` whose modules are (re)written and imported afresh."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"ci{next(_counter)}_"

    def write(self, files: dict[str, str]) -> None:
        """Write ``{relative path: source}``; ``{p}`` in paths and sources is the unique prefix."""
        for relative, source in files.items():
            path = self.root / relative.format(p=self.prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).replace("{p}", self.prefix))

    def load(self, module: str) -> ModuleType:
        """Forget every module of this project, then import ``module`` (``{p}`` expanded)."""
        self.forget()
        importlib.invalidate_caches()
        return importlib.import_module(module.format(p=self.prefix))

    def forget(self) -> None:
        for name in [name for name in sys.modules if name.startswith(self.prefix)]:
            del sys.modules[name]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "project"
    root.mkdir()
    sys.path.insert(0, str(root))
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a stale .pyc of a rewritten file would run old code
    created = Project(root)
    yield created
    created.forget()
    sys.dont_write_bytecode = writes_bytecode
    sys.path.remove(str(root))


def snap(module: ModuleType, **options: Any) -> TaskSnapshot:
    return TaskSnapshot.from_callable(module.task, task_id="t", **options)


def changed(before: TaskSnapshot, after: TaskSnapshot) -> set[str]:
    """Qualified names (without the project prefix) whose hash differs between two snapshots."""
    names = set(before.dependency_hashes) | set(after.dependency_hashes)
    return {
        name.split("_", 1)[1]
        for name in names
        if before.dependency_hashes.get(name) != after.dependency_hashes.get(name)
    }


SCRIPT_AND_HELPERS = {
    "{p}helpers.py": """
        EV_TO_MEV = 1000.0

        def emt_energy(x):
            return x * 2.0
        """,
    "{p}script.py": """
        from {p}helpers import emt_energy

        def task(ctx):
            return [emt_energy(x) for x in ctx]
        """,
}


def test_script_and_sibling_helpers_module(project: Project) -> None:
    project.write(SCRIPT_AND_HELPERS)
    before = snap(project.load("{p}script"))
    project.write({"{p}helpers.py": "def emt_energy(x):\n    return x * 2.0 * 1000.0\n"})
    after = snap(project.load("{p}script"))
    assert after.code_hash != before.code_hash
    assert changed(before, after) == {"helpers.emt_energy"}
    assert after.body_hash == before.body_hash


def test_comment_and_formatting_edits_of_a_helper_module_keep_the_hash(project: Project) -> None:
    project.write(SCRIPT_AND_HELPERS)
    before = snap(project.load("{p}script"))
    project.write(
        {
            "{p}helpers.py": '''
                """Energies, now documented."""
                EV_TO_MEV = 1000.0   # unused here


                def emt_energy(x):
                    """In eV."""
                    # the same computation, reformatted
                    return (x *
                            2.0)
                '''
        }
    )
    assert snap(project.load("{p}script")).code_hash == before.code_hash


LOCAL_PACKAGE = {
    "{p}pkg/__init__.py": "",
    "{p}pkg/physics.py": """
        from {p}pkg import units

        def energy(x):
            return units.convert(x) + 1
        """,
    "{p}pkg/units.py": """
        from {p}pkg.constants import FACTOR

        def convert(x):
            return x * FACTOR
        """,
    "{p}pkg/constants.py": "FACTOR = 2\n",
    "{p}script.py": """
        import {p}pkg.physics as physics

        def task(ctx):
            return physics.energy(ctx)
        """,
}


@pytest.mark.parametrize(
    ("path", "edit", "names"),
    [
        ("{p}pkg/units.py", ("x * FACTOR", "x * FACTOR * 3"), {"pkg.units.convert"}),
        ("{p}pkg/constants.py", ("FACTOR = 2", "FACTOR = 5"), {"pkg.units.FACTOR"}),
        ("{p}pkg/physics.py", ("+ 1", "+ 2"), {"pkg.physics.energy"}),
    ],
)
def test_local_package_helper_calling_a_helper_in_another_module(
    project: Project, path: str, edit: tuple[str, str], names: set[str]
) -> None:
    project.write(LOCAL_PACKAGE)
    before = snap(project.load("{p}script"))
    assert {"pkg.physics.energy", "pkg.units.convert", "pkg.units.FACTOR"} <= {
        name.split("_", 1)[1] for name in before.dependency_hashes
    }
    source = textwrap.dedent(LOCAL_PACKAGE[path]).replace(*edit)
    project.write({path: source})
    after = snap(project.load("{p}script"))
    assert after.code_hash != before.code_hash
    assert changed(before, after) == names


MODULE_OBJECTS = {
    "{p}settings.py": """
        BASE = {"cutoff": 5.0}
        """,
    "{p}model.py": """
        from {p}settings import BASE

        class Model:
            SPECIES = ["Cu"]

            def __init__(self, **options):
                self.options = options

            def energy(self, x):
                return x * self.options["cutoff"]

        PARAMS = dict(BASE, steps=10)
        PARAMS["mode"] = "fast"
        MODEL = Model(cutoff=PARAMS["cutoff"])
        """,
    "{p}script.py": """
        from {p}model import MODEL, PARAMS, Model

        def task(ctx):
            return MODEL.energy(ctx) * PARAMS["steps"] + len(Model.SPECIES)
        """,
}


@pytest.mark.parametrize(
    ("path", "edit"),
    [
        ("{p}settings.py", ('"cutoff": 5.0', '"cutoff": 6.0')),
        ("{p}model.py", ("steps=10", "steps=20")),
        ("{p}model.py", ('PARAMS["mode"] = "fast"', 'PARAMS["mode"] = "slow"')),
        ("{p}model.py", ("MODEL = Model(", "MODEL = Model(scale=2, ")),
        ("{p}model.py", ('SPECIES = ["Cu"]', 'SPECIES = ["Cu", "Ag"]')),
    ],
)
def test_module_level_objects_are_identified_by_the_statements_building_them(
    project: Project, path: str, edit: tuple[str, str]
) -> None:
    project.write(MODULE_OBJECTS)
    before = snap(project.load("{p}script"))
    project.write({path: textwrap.dedent(MODULE_OBJECTS[path]).replace(*edit)})
    assert snap(project.load("{p}script")).code_hash != before.code_hash


def test_a_memo_filled_at_run_time_does_not_change_the_hash(project: Project) -> None:
    project.write(
        {
            "{p}script.py": """
                _MEMO = {}

                def slow(x):
                    if x not in _MEMO:
                        _MEMO[x] = x * 2
                    return _MEMO[x]

                def task(ctx):
                    return slow(ctx)
                """
        }
    )
    module = project.load("{p}script")
    before = snap(module)
    module.task(3)
    assert snap(module).code_hash == before.code_hash


def test_lru_cached_helpers_are_unwrapped(project: Project) -> None:
    source = """
        import functools

        @functools.lru_cache
        def table(n):
            return n + 1

        def task(ctx):
            return table(ctx)
        """
    project.write({"{p}script.py": source})
    before = snap(project.load("{p}script"))
    project.write({"{p}script.py": source.replace("n + 1", "n + 2")})
    assert snap(project.load("{p}script")).code_hash != before.code_hash


def test_standard_library_and_molexp_are_neither_folded_nor_versioned(project: Project) -> None:
    project.write(
        {
            "{p}script.py": """
                import json
                from molexp.workflow import TaskContext, parallel_map

                def task(ctx: TaskContext):
                    return json.dumps([parallel_map, TaskContext.__name__])
                """
        }
    )
    snapshot = snap(project.load("{p}script"))
    assert snapshot.distributions == {}
    assert not any("molexp" in name or "json" in name for name in snapshot.dependency_hashes)


# -- third-party code --------------------------------------------------------------------------


class SitePackages:
    """A ``sys.path`` directory holding one installed distribution, ``tinydist``."""

    def __init__(self, root: Path, project: Project) -> None:
        self.root = root
        self.project = project
        self.name = f"{project.prefix}tinydist"

    def install(self, version: str, body: str = "return x * 2", *, record: bool = True) -> None:
        for old in self.root.glob("*.dist-info"):
            for file in old.iterdir():
                file.unlink()
            old.rmdir()
        package = self.root / self.name
        package.mkdir(exist_ok=True)
        source = f"def scale(x):\n    {body}\n"
        (package / "__init__.py").write_text(source)
        info = self.root / f"{self.name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {self.name}\nVersion: {version}\n"
        )
        if record:  # what an installer writes: every file with its hash and size
            digest = hashlib.sha256(source.encode()).hexdigest()
            (info / "RECORD").write_text(f"{self.name}/__init__.py,sha256={digest},{len(source)}\n")


@pytest.fixture
def site(tmp_path: Path, project: Project) -> Iterator[SitePackages]:
    root = tmp_path / "site"
    root.mkdir()
    sys.path.insert(0, str(root))
    installed = SitePackages(root, project)
    yield installed
    sys.path.remove(str(root))


USES_TINYDIST = {
    "{p}helpers.py": """
        from {p}tinydist import scale

        def prepare(x):
            return scale(x) + 1
        """,
    "{p}script.py": """
        from {p}helpers import prepare

        def task(ctx):
            return prepare(ctx.inputs)
        """,
}


@pytest.mark.parametrize("record", [True, False])
def test_an_upgrade_of_a_third_party_distribution_changes_the_hash(
    project: Project, site: SitePackages, record: bool
) -> None:
    project.write(USES_TINYDIST)
    site.install("1.0", record=record)
    before = snap(project.load("{p}script"))
    assert before.distributions == {site.name: "1.0"}
    assert not any("tinydist" in name for name in before.dependency_hashes)  # not folded
    site.install("2.0")
    after = snap(project.load("{p}script"))
    assert after.distributions == {site.name: "2.0"}
    assert after.code_hash != before.code_hash


def test_other_files_reinstalled_under_the_same_version_change_the_hash(
    project: Project, site: SitePackages
) -> None:
    project.write(USES_TINYDIST)
    site.install("1.0")
    before = snap(project.load("{p}script"))
    site.install("1.0", body="return x * 3")  # e.g. ``pip install .`` of an edited project
    after = snap(project.load("{p}script"))
    assert after.distributions == before.distributions
    assert after.distribution_records != before.distribution_records
    assert after.code_hash != before.code_hash


def test_third_party_code_is_not_walked_an_in_place_edit_goes_unseen(
    project: Project, site: SitePackages
) -> None:
    project.write(USES_TINYDIST)
    site.install("1.0")
    before = snap(project.load("{p}script"))
    (site.root / site.name / "__init__.py").write_text("def scale(x):\n    return x * 3\n")
    assert snap(project.load("{p}script")).code_hash == before.code_hash


def test_a_loaded_distribution_keeps_the_version_of_the_code_that_runs(
    project: Project, site: SitePackages
) -> None:
    project.write(USES_TINYDIST)
    site.install("1.0")
    module = project.load("{p}script")
    before = snap(module)
    site.install("2.0")  # upgraded on disk, but version 1.0 is what this process runs
    assert snap(module).distributions == {site.name: "1.0"}
    assert snap(module).code_hash == before.code_hash


def test_version_tracking_can_be_turned_off(project: Project, site: SitePackages) -> None:
    project.write(USES_TINYDIST)
    site.install("1.0")
    before = snap(project.load("{p}script"), track_dependency_versions=False)
    site.install("2.0")
    after = snap(project.load("{p}script"), track_dependency_versions=False)
    assert after.code_hash == before.code_hash
    assert (before.distributions, after.distributions) == ({site.name: "1.0"}, {site.name: "2.0"})
    assert not after.tracks_dependency_versions


def test_bases_and_module_objects_of_third_party_types_are_versioned(
    project: Project, site: SitePackages
) -> None:
    site.install("1.0")
    (site.root / site.name / "__init__.py").write_text(
        "class Calculator:\n    def energy(self, x):\n        return x\n"
    )
    project.write(
        {
            "{p}script.py": """
                from {p}tinydist import Calculator

                class Tuned(Calculator):
                    pass

                CALC = Calculator()

                def task(ctx):
                    return Tuned().energy(ctx) + CALC.energy(ctx)
                """
        }
    )
    assert snap(project.load("{p}script")).distributions == {site.name: "1.0"}


def test_an_unclaimed_module_in_site_packages_is_identified_by_its_file(
    project: Project, tmp_path: Path
) -> None:
    root = tmp_path / "lib" / "site-packages"
    root.mkdir(parents=True)
    name = f"{project.prefix}loose"
    (root / f"{name}.py").write_text("def f(x):\n    return x\n")
    project.write({"{p}script.py": f"from {name} import f\n\ndef task(ctx):\n    return f(ctx)\n"})
    sys.path.insert(0, str(root))
    try:
        before = snap(project.load("{p}script"))
        (root / f"{name}.py").write_text("def f(x):\n    return x + 1\n")
        after = snap(project.load("{p}script"))
    finally:
        sys.path.remove(str(root))
    assert list(before.distributions) == [f"{name} (no distribution)"]
    assert after.code_hash != before.code_hash


# -- through the runtime ------------------------------------------------------------------------


def test_an_edited_helper_module_is_a_cache_miss_through_the_runtime(project: Project) -> None:
    """The issue's case: ``molexp run`` kept eV values after ``emt_energy`` switched to meV."""
    cache = Caching(MemoryCacheStore())

    def run() -> Any:
        script = project.load("{p}script")
        wf = workflow(name="eos")
        wf.task(cache=True, name="strain_scan")(script.strain_scan)
        return wf.build().execute_sync([1.0, 2.0], cache=cache)

    project.write(
        {
            **SCRIPT_AND_HELPERS,
            "{p}script.py": """
                from {p}helpers import emt_energy

                def strain_scan(ctx):
                    return [emt_energy(x) for x in ctx.inputs]
                """,
        }
    )
    first = run()
    assert first.statuses["strain_scan"] is TaskStatus.SUCCEEDED
    assert first.cache["strain_scan"].startswith("miss: no entry")
    assert run().cache == {"strain_scan": "hit"}
    project.write({"{p}helpers.py": "def emt_energy(x):\n    return x * 2000.0\n"})
    result = run()
    assert result.statuses["strain_scan"] is TaskStatus.SUCCEEDED
    assert result["strain_scan"] == [2000.0, 4000.0]
    assert result.cache["strain_scan"] == f"miss: code: {project.prefix}helpers.emt_energy changed"


# -- hashing properties ---------------------------------------------------------------------------

constants = st.tuples(
    st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False) | st.booleans() | st.text(max_size=3),
    st.integers(-3, 3) | st.none(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=constants, second=constants)
def test_a_constant_in_another_module_changes_the_hash_exactly_when_its_value_does(
    project: Project, first: tuple[Any, Any], second: tuple[Any, Any]
) -> None:
    def snapshot_with(value: tuple[Any, Any]) -> TaskSnapshot:
        project.write(
            {
                "{p}consts.py": f"VALUE = {value!r}\n",
                "{p}script.py": "import {p}consts\n\ndef task(ctx):\n    return {p}consts.VALUE\n",
            }
        )
        return snap(project.load("{p}script"))

    same_value = [(type(a), repr(a)) for a in first] == [(type(b), repr(b)) for b in second]
    assert (snapshot_with(first).code_hash == snapshot_with(second).code_hash) is same_value


def test_closure_captured_objects_count_by_value() -> None:
    def make_task(settings: dict[str, float]) -> Any:
        def task(ctx: Any) -> float:
            return float(ctx) * settings["scale"]

        return task

    one, same, other = (
        make_task({"scale": 1.0}),
        make_task({"scale": 1.0}),
        make_task({"scale": 2.0}),
    )
    assert snap_fn(one).code_hash == snap_fn(same).code_hash
    assert snap_fn(one).code_hash != snap_fn(other).code_hash


def snap_fn(fn: Any) -> TaskSnapshot:
    return TaskSnapshot.from_callable(fn, task_id="t")


def test_explain_names_the_changed_function_and_distribution_version(
    project: Project, site: SitePackages
) -> None:
    cache = Caching(MemoryCacheStore())
    project.write(USES_TINYDIST)
    site.install("1.0")
    cache.put(snap(project.load("{p}script")), 1, "old")
    project.write({"{p}helpers.py": USES_TINYDIST["{p}helpers.py"].replace("+ 1", "+ 2")})
    site.install("2.0")
    explanation = cache.explain(snap(project.load("{p}script")), 1)
    assert explanation.differences == ("code",)
    assert set(explanation.details) == {
        f"code: {project.prefix}helpers.prepare changed",
        f"code: distribution {site.name} changed: 1.0 -> 2.0",
    }
    cache.put(snap(project.load("{p}script")), 1, "2.0")
    site.install("2.0", body="return x * 4")
    assert cache.explain(snap(project.load("{p}script")), 1).details == (
        f"code: distribution {site.name} 2.0 was reinstalled with other files",
    )


@pytest.mark.parametrize("tracked", [True, False])
def test_the_task_option_decides_whether_an_upgrade_invalidates(
    project: Project, site: SitePackages, tracked: bool
) -> None:
    cache = Caching(MemoryCacheStore())

    def run() -> TaskStatus:
        script = project.load("{p}script")
        wf = workflow(name="upgrade")
        wf.task(cache=True, track_dependency_versions=tracked)(script.task)
        return wf.build().execute_sync(3, cache=cache).statuses["task"]

    project.write(USES_TINYDIST)
    site.install("1.0")
    assert run() is TaskStatus.SUCCEEDED
    site.install("2.0")
    assert run() is (TaskStatus.SUCCEEDED if tracked else TaskStatus.CACHED)


def test_the_task_option_must_be_a_bool() -> None:
    wf = workflow(name="options")
    with pytest.raises(TypeError, match="track_dependency_versions must be True or False"):
        wf.task(cache=True, track_dependency_versions="no")(snap_fn)  # type: ignore[call-overload]
