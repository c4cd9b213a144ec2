"""Public API: JSONata expressions, as Node-RED's nodes evaluate them (``$flowContext``,
``$globalContext``, ``$env``). Compile once in ``configure`` (a syntax error is a
:class:`ExpressionError` to report as a ``ConfigError``), evaluate per message.
"""

from flowengine.expressions import Expression, ExpressionError

__all__ = ["Expression", "ExpressionError"]
