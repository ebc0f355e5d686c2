"""How API requests authenticate (session, token or basic) and the rules every endpoint follows.

Sessions must send the CSRF token on changes, as pages do; tokens and basic auth need not.
Viewers may read; only staff change anything (403).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from streams.api import tokens
from streams.services import GroupServiceError, ServiceError

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiError(Exception):
    def __init__(self, status: int, message: str, fields: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields


def error_response(status: int, message: str, fields: Any = None) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = fields
    response = JsonResponse(body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="Kafkaweb", charset="UTF-8"'
    return response


def _credentials_user(request: HttpRequest, header: str) -> Any:
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme in ("bearer", "token"):
        return tokens.user_for(credentials.strip())
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, _, password = decoded.partition(":")
        return authenticate(request, username=username, password=password)
    return None


def _reject_csrf(request: HttpRequest) -> HttpResponse | None:
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, lambda r: HttpResponse(), (), {})


@method_decorator(csrf_exempt, name="dispatch")
class Endpoint(View):
    """A JSON endpoint: authenticates, checks the role, parses the body, maps errors."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            user = _credentials_user(request, header)
            if user is None:
                return error_response(401, "Invalid credentials.")
            request.user = user
        elif request.user.is_authenticated:
            if request.method not in SAFE_METHODS and _reject_csrf(request) is not None:
                return error_response(403, "CSRF check failed: send the X-CSRFToken header.")
        else:
            return error_response(401, "Authentication required (session, token or basic).")
        if request.method not in SAFE_METHODS and not request.user.is_staff:
            return error_response(403, "Only staff users can change the cluster.")
        try:
            return super().dispatch(request, *args, **kwargs)
        except ApiError as error:
            return error_response(error.status, error.message, error.fields)
        except ServiceError as error:
            fields = {error.field: [error.message]} if error.field else None
            return error_response(400, error.message, fields)
        except GroupServiceError as error:
            return error_response(409, str(error))

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return error_response(405, f"{request.method} is not allowed here.")

    @staticmethod
    def body(request: HttpRequest) -> dict[str, Any]:
        if not request.body:
            return {}
        try:
            data = json.loads(request.body)
        except ValueError as exc:
            raise ApiError(400, f"The body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "The body must be a JSON object.")
        return data

    @staticmethod
    def invalid(form: Any) -> ApiError:
        return ApiError(400, "Invalid input.", form.errors.get_json_data())
