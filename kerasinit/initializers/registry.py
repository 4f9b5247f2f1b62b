"""The kerasinit registry: ``register``, ``get``, ``serialize`` and ``deserialize``.

Every class is registered with Keras under package ``kerasinit`` (so ``.keras`` files and JSON
configs name it ``"kerasinit>Name"`` and load with nothing but ``import kerasinit``) and with
this module, which also resolves snake_case aliases and Keras's own names to our classes.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

import keras
import keras.src.initializers
from keras.src.utils.naming import to_snake_case

from kerasinit._validation import keras_error_first, with_detail

PACKAGE = "kerasinit"

#: Class name -> class, in registration order: the initializers that draw i.i.d. values for any kernel
#: shape (the catalogue-wide checks run over these).
CATALOGUE: dict[str, type] = {}
#: Class name -> class for every registered class, in registration order: the catalogue plus the
#: classes kept out of it (``catalogue=False``). What ``kerasinit list`` shows and ``describe`` accepts.
REGISTERED: dict[str, type] = {}
#: Class name -> its canonical snake_case name where splitting the class name at its capitals reads
#: wrong: a stylized name (``ZerO`` would give ``zer_o``, and ``zero`` is Keras's name for ``Zeros``),
#: a compound proper name (``AlexNet``), or a pair whose short names are the ones in use. The split name
#: stays accepted, so configs and layer arguments that used it keep loading.
CANONICAL_NAMES: dict[str, str] = {
    "ZerO": "zero_init",
    "AlexNetNormal": "alexnet_normal",
    "MimeticQueryKey": "mimetic_qk",
    "MimeticValueOutput": "mimetic_vo",
}
#: class -> its canonical snake_case name (see :func:`canonical_alias`).
_CANONICAL: dict[type, str] = {}
#: Every accepted string (class names, ``kerasinit>Name``, snake_case and Keras aliases) -> class.
_NAMES: dict[str, type] = {}
#: Called with every class registered from now on (kerasinit.compat adds tf_keras's registration):
#: the registry never imports the integrations that build on it.
REGISTER_HOOKS: list[Callable[[type], None]] = []

#: Names that Keras itself resolves (never put into Keras's global custom objects).
_KERAS_NAMES = set(keras.src.initializers.ALL_OBJECTS_DICT)


def register(*aliases: str, catalogue: bool = True) -> Callable[[type], type]:
    """Class decorator: register with Keras (package ``kerasinit``) and with :func:`get`.

    ``aliases`` are extra accepted strings; the canonical name (:func:`canonical_alias`) and the
    snake_case split of the class name (``zer_o`` for ``ZerO``) are always added. A string that
    already names another class is refused (``ValueError``) before anything is registered.
    Aliases that Keras does not already use are also added to Keras's global custom objects, so
    ``Dense(4, kernel_initializer="kwon_tanh_uniform")`` works after ``import kerasinit``.
    ``catalogue=False`` keeps a class out of :data:`CATALOGUE` (the checks that every catalogue entry
    draws i.i.d. values for any kernel shape), not out of :data:`REGISTERED` (``kerasinit list``): for
    structured halves of a pair, such as the mimetic attention initializers, which only fit attention
    kernels.
    """

    def wrap(cls: type) -> type:
        name = cls.__name__
        canonical = CANONICAL_NAMES.get(name) or to_snake_case(name)
        accepted = list(dict.fromkeys((name, f"{PACKAGE}>{name}", canonical, to_snake_case(name), *aliases)))
        # a re-registration of the same class name (a reloaded module) replaces the old class
        taken = {a: _NAMES[a].__name__ for a in accepted if a in _NAMES and _NAMES[a].__name__ != name}
        if taken:
            raise ValueError(
                f"register: {name} cannot take the name(s) "
                f"{', '.join(f'{a!r} (already {owner})' for a, owner in taken.items())}; "
                f"choose other aliases or add {name} to registry.CANONICAL_NAMES."
            )
        # Public module, as NumPy's ``set_module`` does: saved configs say ``"module": "kerasinit"``
        # whatever file the class lives in, so moving code never changes saved models.
        cls.__module__ = PACKAGE
        cls = keras.saving.register_keras_serializable(package=PACKAGE)(cls)
        REGISTERED[name] = cls
        if catalogue:
            CATALOGUE[name] = cls
        _CANONICAL[cls] = canonical
        for alias in accepted:
            _NAMES[alias] = cls
        for hook in REGISTER_HOOKS:  # e.g. tf_keras's registry, once kerasinit.compat saw tf_keras loaded
            hook(cls)
        custom = keras.saving.get_custom_objects()
        for alias in accepted[2:]:
            if alias not in _KERAS_NAMES and alias not in custom:
                custom[alias] = cls
        return cls

    return wrap


def names() -> dict[str, list[str]]:
    """Class name -> every string that resolves to it."""
    out: dict[str, list[str]] = {n: [] for n in CATALOGUE}
    for alias, cls in _NAMES.items():
        out.setdefault(cls.__name__, []).append(alias)
    return out


def canonical_alias(cls: type) -> str:
    """The snake_case name ``kerasinit list`` prints (``kwon_tanh_uniform``, ``zero_init``): the class
    name split at its capitals (Keras's ``to_snake_case``, which keeps acronyms such as ``STFT``
    whole), or its entry in :data:`CANONICAL_NAMES`."""
    return _CANONICAL.get(cls) or CANONICAL_NAMES.get(cls.__name__) or to_snake_case(cls.__name__)


def resolve(name: str) -> type:
    """The class for a registered name or alias; ``ValueError`` listing the choices otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"argument `identifier` must be a string name; received {name!r}.")
    cls = _NAMES.get(name)
    if cls is None:
        choices = sorted(canonical_alias(c) for c in REGISTERED.values())
        close = difflib.get_close_matches(name.lower(), [a.lower() for a in _NAMES], n=1, cutoff=0.6)
        hint = f" Did you mean {next(a for a in _NAMES if a.lower() == close[0])!r}?" if close else ""
        raise ValueError(
            f"Unknown initializer {name!r}.{hint} Allowed names: {', '.join(choices)} "
            f"(also the class names, 'kerasinit>ClassName' and Keras's aliases)."
        )
    return cls


def _instantiate(cls: type, config: dict[str, Any]) -> keras.initializers.Initializer:
    if not isinstance(config, dict):
        raise TypeError(f"argument `config` of {cls.__name__} must be a dict; received {config!r}.")
    bad = [k for k in config if not isinstance(k, str)]
    if bad:
        raise TypeError(f"argument `config` of {cls.__name__} must have string keys; received {bad!r}.")
    try:
        return cls.from_config(dict(config))
    except TypeError as exc:
        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = [k for k in config if k not in params]
        if unknown:
            raise TypeError(
                f"{cls.__name__}: unknown config key(s) {unknown}; allowed keys: {params}."
            ) from exc
        raise


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Build an initializer from a Keras-style config dict (mirrors ``keras.initializers.deserialize``).

    Accepts ``{"class_name": ..., "config": {...}}`` with optional ``module`` and
    ``registered_name``; Keras's own class names resolve to the kerasinit mirrors, and names found
    in ``custom_objects`` to those objects.
    """
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict):
        raise TypeError(f"argument `config` must be a dict or a string; received {config!r}.")
    if "class_name" not in config:
        raise ValueError(f"argument `config` must have a 'class_name' key; received keys {list(config)}.")
    class_name = config["class_name"]
    if not isinstance(class_name, str):
        raise TypeError(f"config['class_name'] must be a string; received {class_name!r}.")
    inner = config.get("config", {})
    if inner is None:
        inner = {}
    registered = config.get("registered_name")
    custom_objects = custom_objects or {}
    for key in (registered, class_name):
        if isinstance(key, str) and key in custom_objects:
            obj = custom_objects[key]
            return _instantiate(obj, inner) if inspect.isclass(obj) else obj
    cls = _NAMES.get(registered) if isinstance(registered, str) else None
    cls = cls or resolve(class_name)
    return _instantiate(cls, inner)


def serialize(initializer: Any) -> dict[str, Any]:
    """The Keras config of ``initializer`` (mirrors ``keras.initializers.serialize``)."""
    return keras.saving.serialize_keras_object(initializer)


def get(identifier: Any) -> Any:
    """Retrieve an initializer, like ``keras.initializers.get`` but resolving to kerasinit classes.

    ``identifier`` may be an instance (returned as is), an initializer class (instantiated with
    defaults), a config dict, a name (``"KwonTanhUniform"``, ``"kerasinit>KwonTanhUniform"``,
    ``"kwon_tanh_uniform"``, Keras's ``"glorot_uniform"``...), a callable ``(shape, dtype)``, or
    ``None``. What kerasinit does not know but Keras does (a name registered with Keras by your own
    code, an array or tensor of initial values) is Keras's; what neither knows raises Keras's error
    (``ValueError``, Keras's wording first) with kerasinit's detail after it.
    """
    if identifier is None:
        return None
    if isinstance(identifier, keras.initializers.Initializer):
        return identifier
    if inspect.isclass(identifier):
        obj = identifier()  # as Keras does for any class
        if not callable(obj):
            raise TypeError(f"argument `identifier` must be an initializer class; {identifier!r}() is not callable.")
        return obj
    if isinstance(identifier, str):
        try:
            cls = resolve(identifier)
        except ValueError as ours:
            try:
                return keras.initializers.get(identifier)
            except (TypeError, ValueError) as theirs:
                raise with_detail(theirs, ours) from None
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier) or keras.ops.is_tensor(identifier) or hasattr(identifier, "__array__"):
        return identifier if callable(identifier) else keras.initializers.get(identifier)
    raise keras_error_first(lambda: keras.initializers.get(identifier), TypeError(
        "argument `identifier` must be None, an Initializer instance or class, a config dict, "
        f"a registered name, a callable or an array; received {identifier!r} (type {type(identifier).__name__})."
    ))
