"""What readers need to know about the decoders, as plain data, without importing them.

A decoder is declared once, on its class (adafuse/decoding/): `name`, the keyword-only
parameters of its constructor (name, annotation, default), `bounds` and the `labels` reports
give its settings. The run folders' readers (`compare`, `show`, `score`, `merge`) need some of
that (the decoders' order, labels, defaults, which settings are numbers) but must not import
the decoding package, which imports torch. So this module reads the same facts from the
classes' source, with `ast`, in the order adafuse/decoding/__init__.py imports their modules
(the order reports list the decoders in); tests/decoding/test_registry.py checks that what is
read here is what the imported classes say. A decoder class registered in this process
(`register_decoder`, which fills `DECODERS`) is known from the class itself (`facts_of`).

The types are the OmegaConf types of the decoders' config nodes (registry.config_schema is
made from `schema_fields`): a scalar, a list of floats, Optional of those, Any for the rest.
"""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Any, List, Optional

DECODERS: dict[str, type] = {}  # the decoder classes registered in this process, by name

LAST_MODEL = "last model"  # an upper bound in `bounds`: the index of the last model given

DECODING = Path(__file__).parent / "decoding"
REQUIRED = "???"  # OmegaConf's mark for a value the config must give
_SCALARS = (int, float, str, bool)


@dataclasses.dataclass(frozen=True)
class Parameter:
    """A keyword-only constructor parameter: its config type and its default (REQUIRED if none)."""

    name: str
    type: Any
    default: Any


@dataclasses.dataclass(frozen=True)
class DecoderFacts:
    name: str
    parameters: tuple[Parameter, ...]
    bounds: dict = dataclasses.field(default_factory=dict)
    labels: dict = dataclasses.field(default_factory=dict)

    def default(self, key: str) -> Any:
        return {p.name: p.default for p in self.parameters}[key]


def omegaconf_type(annotation: Any) -> Any:
    """An annotation as a type OmegaConf checks: a scalar, a list of floats (from any
    sequence of floats), Optional of those; Any for the rest (left to the constructor)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            kind = omegaconf_type(args[0])
            return Optional[kind] if kind is not Any else Any
        return Any
    if annotation in _SCALARS:
        return annotation
    if origin in (list, tuple, collections.abc.Sequence) and args and set(args) <= {float, Ellipsis}:
        return List[float]
    return Any


def parameter_type(annotation: Any, default: Any) -> Any:
    """A parameter's config type: its annotation's; without one, the type of its default
    (Optional where the default is None); Any where neither says."""
    if annotation is not inspect.Parameter.empty:
        return omegaconf_type(annotation)
    kind = type(default) if type(default) in _SCALARS else Any
    return Optional[kind] if default is None and kind is not Any else kind


@functools.cache
def facts_of(cls: type) -> DecoderFacts:
    """A decoder class's facts, read from the class (annotations resolved with its module's
    globals; one that cannot be resolved counts as none)."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # a name only imported under TYPE_CHECKING, a typo in a user's class
        hints = {}
    params = []
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            default = REQUIRED if p.default is inspect.Parameter.empty else p.default
            params.append(Parameter(name, parameter_type(hints.get(name, inspect.Parameter.empty), p.default), default))
    return DecoderFacts(cls.name, tuple(params), dict(getattr(cls, "bounds", {})), dict(getattr(cls, "labels", {})))


def schema_fields(facts: DecoderFacts) -> list[tuple[str, Any, Any]]:
    """(key, type, default) of a decoder's config node: `name`, its parameters but `engine`
    (a run's own node), and the runner's `batch_size` (prompts per `generate_batch` call)."""
    return ([("name", str, facts.name)]
            + [(p.name, p.type, p.default) for p in facts.parameters if p.name != "engine"]
            + [("batch_size", int, 1)])


# -- reading the built-in classes from their source -------------------------------------------

_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "None": None, "list": list, "List": List,
          "tuple": tuple, "Sequence": collections.abc.Sequence, "Optional": Optional, "Any": Any}


def _annotation(node: ast.expr) -> Any:
    """An annotation's AST as the type it names, for the names above; Any for the rest."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _annotation(ast.parse(node.value, mode="eval").body)
    if isinstance(node, ast.Constant) and node.value in (None, Ellipsis):
        return node.value
    if isinstance(node, ast.Name):
        return _NAMES.get(node.id, Any)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return typing.Union[_annotation(node.left), _annotation(node.right)]
    if isinstance(node, ast.Subscript):
        origin = _annotation(node.value)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        args = tuple(_annotation(item) for item in items)
        try:
            return origin[args if len(args) > 1 else args[0]]
        except TypeError:
            return Any
    return Any


def _literal(node: ast.expr, where: str) -> Any:
    """A literal value, with LAST_MODEL as its value; anything else is an error naming where."""
    class Names(ast.NodeTransformer):
        def visit_Name(self, name: ast.Name) -> ast.AST:
            return ast.Constant(LAST_MODEL) if name.id == "LAST_MODEL" else name

    try:
        return ast.literal_eval(Names().visit(node))
    except ValueError:
        raise ValueError(f"{where}: {ast.unparse(node)} is not a literal; the decoder catalog "
                         "reads the built-in decoders without importing them") from None


def _parameter(arg: ast.arg, default: ast.expr | None, where: str) -> Parameter:
    value = inspect.Parameter.empty if default is None else _literal(default, where)
    annotation = inspect.Parameter.empty if arg.annotation is None else _annotation(arg.annotation)
    return Parameter(arg.arg, parameter_type(annotation, value), REQUIRED if default is None else value)


def _class_facts(cls: ast.ClassDef, known: dict[str, DecoderFacts], where: str) -> DecoderFacts:
    """One decorated class's facts; what its body does not set comes from a base class
    read before it (as class attributes are inherited), else is empty."""
    base = next((known[b.id] for b in cls.bases if isinstance(b, ast.Name) and b.id in known), None)
    attrs = {}
    params = base.parameters if base else ()
    for node in cls.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            attrs[node.targets[0].id] = _literal(node.value, f"{where}: {cls.name}.{node.targets[0].id}")
        elif isinstance(node, ast.FunctionDef) and node.name == "__init__":
            params = tuple(_parameter(a, d, f"{where}: {cls.name}({a.arg})")
                           for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults))
    return DecoderFacts(attrs["name"], params, attrs.get("bounds", base.bounds if base else {}),
                        attrs.get("labels", base.labels if base else {}))


def _module_order() -> list[Path]:
    """The modules adafuse/decoding/__init__.py imports, in its order."""
    tree = ast.parse((DECODING / "__init__.py").read_text(encoding="utf-8"))
    paths = [DECODING / f"{node.module.rpartition('.')[2]}.py" for node in tree.body
             if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("adafuse.decoding.")]
    return [path for path in paths if path.is_file()]


@functools.cache
def builtin() -> dict[str, DecoderFacts]:
    """The package's decoders (`@register_decoder` classes), by name, in report order."""
    found: dict[str, DecoderFacts] = {}
    by_class: dict[str, DecoderFacts] = {}
    for path in _module_order():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                decorated = any(isinstance(d, ast.Name) and d.id == "register_decoder" for d in node.decorator_list)
                if decorated or any(isinstance(b, ast.Name) and b.id in by_class for b in node.bases):
                    facts = _class_facts(node, by_class, f"adafuse/decoding/{path.name}")
                    by_class[node.name] = facts
                    if decorated:
                        found[facts.name] = facts
    return found


def catalog() -> dict[str, DecoderFacts]:
    """Every decoder this process knows: the built-in ones in report order, then the classes
    registered in this process (`DECODERS`, filled by registry.register_decoder)."""
    return {**builtin(), **{name: facts_of(cls) for name, cls in DECODERS.items()}}


def decoder_names() -> list[str]:
    return list(catalog())


def setting_label(decoder: str, key: str) -> str:
    """How reports name a decoder setting: the class's `labels` (θ_Δ, B, k); for a decoder
    this process does not know, the label a known one gives the key; else the key."""
    known = catalog()
    if decoder in known:
        return known[decoder].labels.get(key, key)
    return {k: v for facts in known.values() for k, v in facts.labels.items()}.get(key, key)
