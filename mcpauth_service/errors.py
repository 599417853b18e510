"""Plain error responses: never a redirect, never a stack trace."""

from django.http import JsonResponse
from django.shortcuts import render

_API_PREFIXES = ("/p/", "/.well-known/", "/api/")


def _wants_json(request) -> bool:
    return request.path.startswith(_API_PREFIXES) or getattr(request, "project", None) is not None


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"error": "not_found", "error_description": "Not found."}, status=404)
    return render(request, "errors/404.html", status=404)


def server_error(request):
    if _wants_json(request):
        return JsonResponse({"error": "server_error"}, status=500)
    return render(request, "errors/500.html", status=500)
