from tests.client.fixtures import *  # noqa: F401,F403
