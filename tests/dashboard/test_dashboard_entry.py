"""API.md "Dashboard entry": signed out -> operator sign-in; signed in -> the operator's projects."""

from tests.conftest import PASSWORD


def test_the_root_leads_a_signed_out_visitor_to_sign_in(client, db):
    response = client.get("/", follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert ">Sign in</button>" in html


def test_an_operator_signs_in_and_sees_their_projects_only(client, project_a, project_b):
    response = client.post("/login", {"email": "alice@example.com", "password": PASSWORD}, follow=True)
    html = response.content.decode()
    assert "Project ALPHA" in html and "Project BRAVO" not in html
    detail = client.get("/projects/alpha")
    assert "http://127.0.0.1:8000/p/alpha" in detail.content.decode()


def test_another_operators_project_is_a_404(client, project_a, project_b):
    client.post("/login", {"email": "alice@example.com", "password": PASSWORD})
    assert client.get("/projects/bravo").status_code == 404


def test_an_end_user_cannot_sign_in_to_the_dashboard(client, end_user_a):
    response = client.post("/login", {"email": "eve@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_a_wrong_password_is_refused(client, alice):
    response = client.post("/login", {"email": "alice@example.com", "password": "nope"})
    assert response.status_code == 400


def test_pages_cannot_be_framed(client, db):
    response = client.get("/login")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
