import breakerbox_rs
import breakerbox_rs._breakerbox as native


import os

import pytest

_SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_installed_wheel_is_tested():
    # The package under test is the wheel in the venv, with its compiled core.
    if os.path.dirname(os.path.dirname(os.path.abspath(breakerbox_rs.__file__))) == _SOURCE:
        pytest.skip("testing the source folder (maturin develop), not an installed wheel")
    assert "site-packages" in breakerbox_rs.__file__
    assert native.__file__.endswith((".so", ".pyd"))
