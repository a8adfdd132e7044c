"""`import molexp as me`: one explicit, lazy public surface over the layer packages."""

from __future__ import annotations

import subprocess
import sys

import molexp as me


def test_every_exported_name_resolves_to_the_layer_object() -> None:
    import molexp.assets
    import molexp.workflow
    import molexp.workflow.bindings
    import molexp.workspace

    layers = [molexp.workspace, molexp.assets, molexp.workflow, molexp.workflow.bindings]
    for name in sorted(set(me.__all__) - {"workflow"}):
        value = getattr(me, name)
        assert any(getattr(layer, name, None) is value for layer in layers), name


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert sorted(me.__all__) == me.__all__
    assert set(me.__all__) == set(me._EXPORTS)


def test_seed_names_are_exported() -> None:
    seed_names = {
        "Workspace", "Project", "Experiment", "Run", "RunContext", "ParamSpace", "GridSpace",
        "UniformSpace", "entry", "workflow", "Workflow", "WorkflowBuilder", "Task", "Actor",
        "TaskContext",
    }  # fmt: skip
    assert seed_names <= set(me.__all__)


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        me.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_molexp_loads_no_layer_until_used() -> None:
    code = (
        "import sys, molexp\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('molexp.'))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_layer_packages_stay_importable_beside_the_meta_package() -> None:
    code = (
        "import molexp, molexp.workflow, molexp.workspace, molexp.assets\n"
        "print(len(molexp.__path__) >= 1, molexp.workflow.workflow('x').build().name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "True x"


def test_me_workflow_is_both_the_dsl_entry_point_and_the_subpackage() -> None:
    import molexp.workflow

    wf = me.workflow(name="demo")

    @wf.task
    async def fetch(ctx: me.TaskContext) -> list[float]:
        return [1.0, 4.0, 9.0]

    @wf.task(depends_on=["fetch"])
    async def summarize(ctx: me.TaskContext) -> float:
        return float(sum(ctx.inputs))

    spec = wf.build()
    assert isinstance(spec, me.Workflow)
    assert spec.execute_sync()["summarize"] == 14.0
    assert me.workflow is molexp.workflow
    assert me.workflow.WorkflowBuilder is me.WorkflowBuilder
