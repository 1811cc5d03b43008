"""How a task's network takes conf/model/: the keys a constructor takes are its signature's
arguments, less the runtime values the task passes itself (a vocabulary's size). Validation
asks the same question before any work (runner/run/keys.py), so the class decides, not a list."""
import inspect

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def constructor_keys(cls, runtime: tuple[str, ...] = ()) -> list[str]:
    """The keyword arguments `cls(...)` takes from a config, in the signature's order."""
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind not in _VARIADIC and p.name not in runtime]
