"""A headless end user: follows the issuer's pages from `/oauth/authorize` to the client's redirect URI.

It reads the pages the way a person does, by the contract's labels: the sign-in form's `Email` and
`Password` fields and its `Sign in` button, then the consent page's `Allow` button. Cookies, CSRF
tokens and hidden fields ride along as a browser would send them. Redirects are followed by hand
and stop at the client's redirect URI, whose query (code, state, iss) is what the client receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2

MAX_HOPS = 25


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, type)
    labels: dict[str, str] = field(default_factory=dict)  # label text -> input name
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (text, name, value)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._ids: dict[str, str] = {}  # input id -> name
        self._label_for: list[tuple[str, str]] = []  # (for id, text)
        self._label: list | None = None  # [for, text, wrapped input name]
        self._button: list | None = None  # [name, value, text]

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
        elif tag == "label":
            self._label = [a.get("for", ""), "", ""]
        elif tag in ("input", "textarea", "select") and self.forms and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image"):
                self.forms[-1].buttons.append((a.get("value", ""), a["name"], a.get("value", "")))
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.forms[-1].fields.append((a["name"], a.get("value", ""), kind))
            if a.get("id"):
                self._ids[a["id"]] = a["name"]
            if self._label is not None:
                self._label[2] = a["name"]
        elif tag == "button" and self.forms:
            self._button = [a.get("name", ""), a.get("value", ""), ""]

    def handle_data(self, data):
        if self._label is not None:
            self._label[1] += data
        if self._button is not None:
            self._button[2] += data

    def handle_endtag(self, tag):
        if tag == "label" and self._label is not None:
            target, text, wrapped = self._label
            self._label = None
            text = " ".join(text.split())
            if wrapped and self.forms:
                self.forms[-1].labels[text] = wrapped
            else:
                self._label_for.append((target, text))
        elif tag == "button" and self._button is not None and self.forms:
            name, value, text = self._button
            self._button = None
            self.forms[-1].buttons.append((" ".join(text.split()), name, value))

    def resolve(self) -> list[Form]:
        for target, text in self._label_for:
            name = self._ids.get(target)
            for form in self.forms:
                if name and any(f[0] == name for f in form.fields):
                    form.labels[text] = name
        return self.forms


class EndUser:
    """One person with one browser profile (cookie jar) who signs in and consents."""

    def __init__(self, email: str, password: str, *, allow: bool = True):
        self.email, self.password, self.allow = email, password, allow
        self.http = httpx2.Client(follow_redirects=False, timeout=30)
        self.pages: list[str] = []  # paths visited, for the test's record

    def authorize(self, authorization_url: str, redirect_uri: str) -> dict[str, str]:
        """Drive the issuer's pages until it redirects to `redirect_uri`; returns that query."""
        response = self.http.get(authorization_url)
        for _ in range(MAX_HOPS):
            self.pages.append(urlsplit(str(response.request.url)).path)
            if response.is_redirect:
                location = urljoin(str(response.request.url), response.headers["location"])
                if location.split("?")[0] == redirect_uri.split("?")[0]:
                    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                response = self.http.get(location)
                continue
            if response.status_code != 200:
                raise AssertionError(f"{response.request.url} answered {response.status_code}: {response.text[:500]}")
            response = self._submit(response)
        raise AssertionError(f"no redirect to the client after {MAX_HOPS} pages: {self.pages}")

    def _submit(self, page: httpx2.Response) -> httpx2.Response:
        parser = _FormParser()
        parser.feed(page.text)
        forms = parser.resolve()
        wanted = ("Sign in",) if _find(forms, "Sign in") else (("Allow",) if self.allow else ("Deny",))
        form, button = _find(forms, wanted[0]) or (None, None)
        if form is None:
            raise AssertionError(f"no form with a {wanted[0]!r} button on {page.request.url}:\n{page.text[:2000]}")
        data = [(name, value) for name, value, _ in form.fields]
        if wanted[0] == "Sign in":
            data = _fill(data, form.labels, {"Email": self.email, "Password": self.password})
        if button[1]:
            data.append((button[1], button[2]))
        target = urljoin(str(page.request.url), form.action or str(page.request.url))
        return self.http.post(target, content=urlencode(data), headers={
            "Content-Type": "application/x-www-form-urlencoded", "Referer": str(page.request.url),
            "Origin": _origin(str(page.request.url))})

    def close(self) -> None:
        self.http.close()


def _find(forms: list[Form], text: str):
    for form in forms:
        for button in form.buttons:
            if button[0] == text:
                return form, button
    return None


def _fill(data: list[tuple[str, str]], labels: dict[str, str], values: dict[str, str]) -> list[tuple[str, str]]:
    for label, value in values.items():
        name = labels.get(label)
        if name is None:
            raise AssertionError(f"no field labelled {label!r} (labels: {sorted(labels)})")
        data = [(n, v) for n, v in data if n != name] + [(name, value)]
    return data


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
