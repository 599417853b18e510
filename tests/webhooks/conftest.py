from tests.webhooks.support import receiver  # noqa: F401 - the fixture
