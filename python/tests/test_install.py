import breakerbox_rs
import breakerbox_rs._breakerbox as native


def test_the_installed_wheel_is_tested():
    # The package under test is the wheel in the venv, with its compiled core.
    assert "site-packages" in breakerbox_rs.__file__
    assert native.__file__.endswith((".so", ".pyd"))
