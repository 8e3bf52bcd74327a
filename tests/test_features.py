"""`gan-tl probe` and `gan-tl generated` end to end on a few images, and their refusals: each names the fix and nothing is written."""
import csv

from conftest import run_cli

QUICK = ("--targets", "digits", "--shots-per-class", "1", "--seeds", "0", "--limit", "40", "--no-supervised")


def test_probe_writes_every_row(tmp_path):
    out = tmp_path / "probe.csv"
    code, err = run_cli("probe", *QUICK, "--csv", out)
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    networks = {(r["network"], r["block"]) for r in rows}
    assert networks == {("source D", "d_block_0"), ("source D", "d_block_1"), ("source D", "d_block_2"),
                        ("random D", "d_block_0"), ("random D", "d_block_1"), ("random D", "d_block_2"),
                        ("pixels", "pixels"), ("scratch CNN", "end to end")}
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)


def test_probe_refuses_a_missing_source(tmp_path):
    out = tmp_path / "probe.csv"
    code, err = run_cli("probe", *QUICK, "--source", tmp_path / "nowhere", "--csv", out)
    assert code == 2 and "neither a folder nor a shipped source" in err and "fashion28" in err
    assert not out.exists()


def test_probe_refuses_a_source_of_another_shape(tmp_path):
    code, err = run_cli("probe", *QUICK, "--source", "emoji32")
    assert code == 2 and "takes 32×32×3 images and these are 28×28×1" in err and "fashion28" in err


def test_probe_refuses_more_shots_than_a_class_has(tmp_path):
    code, err = run_cli("probe", "--targets", "digits", "--shots-per-class", "50", "--seeds", "0", "--limit", "40",
                        "--no-supervised")
    assert code == 2 and "class" in err and "images" in err, err


GENERATED = ("--targets", "digits", "--shots-per-class", "1", "--generated-per-class", "2", "--seeds", "0", "--gan-steps", "10",
             "--classifier-steps", "5", "--oracle-steps", "5", "--limit", "40")


def test_generated_writes_every_variant(tmp_path):
    out = tmp_path / "generated.csv"
    code, err = run_cli("generated", *GENERATED, "--csv", out)
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    assert [r["variant"] for r in rows] == ["oracle", "shots", "shots + augmentation", "shots + fine-tuned",
                                            "fine-tuned only", "shots + scratch GAN"]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and 0.0 <= float(r["coverage"]) <= 1.0 for r in rows)


def test_an_existing_csv_is_refused_and_kept(tmp_path):
    out = tmp_path / "results.csv"
    out.write_text("earlier results\n")
    for command, options in (("generated", GENERATED), ("probe", QUICK)):
        code, err = run_cli(command, *options, "--csv", out)
        assert code == 2 and "never overwritten" in err, err
    assert out.read_text() == "earlier results\n"


def test_generated_refuses_an_unconditional_source(tmp_path):
    out = tmp_path / "generated.csv"
    code, err = run_cli("generated", *GENERATED, "--source", "fashion28", "--csv", out)
    assert code == 2 and "is unconditional" in err and "fashion28_conditional" in err
    assert not out.exists()
