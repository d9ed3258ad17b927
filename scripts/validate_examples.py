"""Validate the cluster examples against the upstream schemas.

- examples/kubernetes/*.yaml: every document with kubernetes-validate (PyPI), which checks a
  resource against the OpenAPI-derived JSON schemas of a Kubernetes release, in strict mode
  (an unknown field is an error), for each release in KUBERNETES_VERSIONS.
- examples/argo/*.yaml: every Workflow with hera's models (PyPI), which are generated from
  Argo Workflows' OpenAPI spec (hera 7.1 models Argo Workflows 4.0.5), with unknown fields
  made errors (pydantic ignores them by default).

Before the examples, each validator must refuse a broken copy of them (an unknown field, a
wrong type), so that a validator that accepts anything cannot pass this check.
Exit status 0 when every document is valid, 1 otherwise. Run by scripts/validate-examples.sh.
"""

import copy
import importlib
import pkgutil
import sys
from pathlib import Path

import kubernetes_validate
import pydantic
import yaml

KUBERNETES_VERSIONS = ["1.33.0", "1.37.0"]
ROOT = Path(__file__).resolve().parent.parent


def strict_argo_models():
    """hera's Workflow model, with every generated model refusing unknown fields."""
    import hera.workflows.models as models

    classes = set()
    for info in pkgutil.walk_packages(models.__path__, models.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, pydantic.BaseModel)
                and value.__module__.startswith(models.__name__)
            ):
                classes.add(value)
    for cls in classes:
        cls.model_config["extra"] = "forbid"
    for cls in classes:
        cls.model_rebuild(force=True)
    return models.Workflow


def kubernetes_errors(doc):
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"Kubernetes {version}: {e.message} at {list(e.path)}")
    return errors


def argo_errors(workflow, doc):
    try:
        workflow.model_validate(doc)
        return []
    except pydantic.ValidationError as e:
        return [f"Argo Workflows: {e}"]


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def main():
    workflow = strict_argo_models()
    checks = []
    for path in sorted((ROOT / "examples/kubernetes").glob("*.yaml")):
        for doc in documents(path):
            checks.append((path, doc, kubernetes_errors))
    for path in sorted((ROOT / "examples/argo").glob("*.yaml")):
        for doc in documents(path):
            if doc.get("kind") != "Workflow":
                sys.exit(f"{path}: only Workflows are checked, found {doc.get('kind')}")
            checks.append((path, doc, lambda d: argo_errors(workflow, d)))
    if not checks:
        sys.exit("no example found")

    # The validators must refuse what is wrong.
    for path, doc, errors_of in checks:
        unknown = copy.deepcopy(doc)
        unknown.setdefault("spec", {})["notAField"] = True
        if not errors_of(unknown):
            sys.exit(f"{path}: the validator accepted an unknown field: it checks nothing")
        if doc["kind"] in ("Job", "Workflow"):
            wrong = copy.deepcopy(doc)
            wrong["spec"]["parallelism" if doc["kind"] == "Job" else "entrypoint"] = ["x"]
            if not errors_of(wrong):
                sys.exit(f"{path}: the validator accepted a wrong type: it checks nothing")

    failed = False
    for path, doc, errors_of in checks:
        name = f"{path.relative_to(ROOT)}: {doc['kind']} {doc['metadata'].get('name') or doc['metadata'].get('generateName')}"
        errors = errors_of(doc)
        for e in errors:
            print(f"{name}: {e}", file=sys.stderr)
        failed |= bool(errors)
        if not errors:
            print(f"{name}: valid")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
