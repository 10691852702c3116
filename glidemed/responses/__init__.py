"""The response-file contract in one place: decoding, schema, build, answers, hash chain
and the rater's plan, with public types (:class:`ResponseChecker`, :class:`CheckedResponse`,
:class:`Rejected`). ``glidemed serve``, ``analyze``, ``archive`` and ``simulate`` use it."""

from glidemed.responses.contract import (MAX_RESPONSE_BYTES, RESPONSE_SCHEMA, SIMULATED_BROWSER,
                                         CheckedResponse, Rejected, ResponseChecker, check_response,
                                         check_schema, decode_response, fast_validator,
                                         is_simulated, normalise_rater, parse_response,
                                         response_context, response_validator, schema_where)

__all__ = ["MAX_RESPONSE_BYTES", "RESPONSE_SCHEMA", "SIMULATED_BROWSER", "CheckedResponse",
           "Rejected", "ResponseChecker", "check_response", "check_schema", "decode_response",
           "fast_validator", "is_simulated", "normalise_rater", "parse_response",
           "response_context", "response_validator", "schema_where"]
