"""Public API: JavaScript value semantics for nodes that must behave as Node-RED's do.

- conversions and comparisons: ``String(v)`` (:func:`to_string`), ``Number(v)``
  (:func:`to_number`), ``parseFloat`` (:func:`parse_float`), ``==`` / ``===``
  (:func:`loose_eq`, :func:`strict_eq`), ``<`` ``<=`` ``>`` ``>=`` (:func:`js_lt` ...),
  ``typeof`` (:func:`js_typeof`), Node-RED's type names and emptiness tests (:func:`is_type`,
  :func:`is_empty`, :func:`is_not_empty`, :func:`node_red_type`), ``util.inspect``
  (:func:`inspect`);
- RegExp: :func:`compile_js_regex` (a JavaScript pattern as a Python ``re`` pattern) and
  ``String.prototype.replace`` (:func:`js_replace`);
- JSON: ``JSON.stringify`` (:func:`json_dumps`) and a fast ``JSON.parse`` (:func:`json_loads`,
  refusing lone surrogates with :class:`LoneSurrogateError`); :func:`json_parse` raises
  :class:`JSONParseError` with V8's message, and :func:`v8_message` words any refused text so.
"""

from flowengine import jsvalues as _jsvalues
from flowengine.jsjson import LoneSurrogateError
from flowengine.jsjson import dumps as json_dumps
from flowengine.jsjson import loads as json_loads
from flowengine.jsonerrors import JSONParseError, v8_message
from flowengine.jsonerrors import loads as json_parse
from flowengine.jsvalues import *  # noqa: F403  (the names in jsvalues.__all__)

__all__ = [
    *_jsvalues.__all__,
    "JSONParseError",
    "LoneSurrogateError",
    "json_dumps",
    "json_loads",
    "json_parse",
    "v8_message",
]
