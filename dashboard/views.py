"""Operator dashboard: sign-in and the projects an operator belongs to."""

from django.contrib.auth import authenticate, login, logout
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from projects.models import Project

from .decorators import operator_required, project_for


@require_http_methods(["GET", "POST"])
def login_view(request):
    error = ""
    email = ""
    if request.method == "POST":
        email = request.POST.get("email", "").strip()
        user = authenticate(request, email=email, password=request.POST.get("password", ""))
        if user is not None:
            login(request, user)
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = "dashboard:home"
            return redirect(target)
        error = "That email and password do not match an operator account."
    return render(request, "dashboard/login.html", {"error": error, "email": email}, status=400 if error else 200)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("dashboard:login")


@operator_required
def home(request):
    projects = Project.objects.visible_to(request.user).order_by("name")
    return render(request, "dashboard/home.html", {"projects": projects})


@operator_required
def project_detail(request, slug):
    project, role = project_for(request, slug)
    return render(request, "dashboard/project.html", {"project": project, "role": role})
