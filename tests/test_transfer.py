"""Every transfer method on every backend: frozen weights bit-identical, trained ones moved, penalties 0 at the source."""
import pytest

from conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_methods_train_what_they_claim(scenario, backend):
    from gan_tl_course.transfer import METHODS
    reports = scenario("transfer_methods", backend)
    mining = reports.pop("minegan_mining")
    assert set(reports) == set(METHODS)
    assert not [p for p in mining["changed"] if p in mining["g_weights"]], (backend, "G moved while mining")
    assert any(p.startswith("miner") for p in mining["changed"]), (backend, "the miner did not train")
    frozen_blocks = {"freeze_d": ("d_block_0", "d_block_1"), "freeze_g": ("g_block_0",),
                     "scale_shift": ("g_block_0_dense", "g_block_1_deconv", "g_block_2_deconv", "g_out_conv"),
                     "projected": ("d_block_0", "d_block_1", "proj_mix")}
    for name, r in reports.items():
        frozen = [p for p in r["unchanged"] + r["changed"] if p.startswith(frozen_blocks.get(name, ("-",)))]
        assert frozen or name not in frozen_blocks, (backend, name, "no variable of its frozen blocks was found")
        assert not [p for p in frozen if p in r["changed"] or p in r["trained"]], (backend, name)
        assert not [p for p in r["trained"] if p not in r["changed"]], (backend, name)
        assert len(r["trained"]) > 0, (backend, name)
        for penalty in r["penalties_at_source"].values():
            assert penalty is None or abs(penalty) < 1e-9, (backend, name, penalty)
    assert len(reports["freeze_d"]["trained"]) < len(reports["finetune"]["trained"])
    assert len(reports["scale_shift"]["trained"]) < len(reports["freeze_g"]["trained"])
    heads = {p.split("/")[0] for p in reports["projected"]["trained"] if not p.startswith("g_")}
    assert heads and all(h.startswith("proj_head_") for h in heads), (backend, heads)   # D trains only its heads
