from conftest import one, setup_admin


def test_extension_installs_and_needs_setup(su):
    assert one(su, "SELECT dashboard_auth.needs_setup()") is True
    uid, token = setup_admin(su)
    assert token.startswith("fbs_")
    assert one(su, "SELECT dashboard_auth.needs_setup()") is False
