import pytest

from infer_kit.errors import InferKitError
from infer_kit.labels import image_key, read_class_index, read_val_labels, write_class_index, write_val_labels


def test_image_key_stops_at_first_dot():
    assert image_key("ILSVRC2012_val_00000001.JPEG") == "ILSVRC2012_val_00000001"
    assert image_key("/x/a.b.bin") == "a"


def test_val_labels_round_trip(tmp_path):
    path = tmp_path / "val_label.txt"
    write_val_labels(path, [("ILSVRC2012_val_00000001.JPEG", 65), ("ILSVRC2012_val_00000002.JPEG", 970)])
    assert path.read_text() == "ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_00000002.JPEG 970\n"
    assert read_val_labels(path) == {"ILSVRC2012_val_00000001": 65, "ILSVRC2012_val_00000002": 970}


@pytest.mark.parametrize(
    "text, fragment",
    [("a.JPEG 1\nb.JPEG x\n", ":2: malformed"), ("a.JPEG 1\na.png 2\n", ":2: image 'a' is labelled twice"),
     ("a.JPEG\n", ":1: malformed"), ("\n", "has no labels")],
)
def test_bad_label_files_name_file_and_line(tmp_path, text, fragment):
    path = tmp_path / "val_label.txt"
    path.write_text(text)
    with pytest.raises(InferKitError, match=fragment):
        read_val_labels(path)


def test_class_index_round_trip_and_validation(tmp_path):
    path = tmp_path / "class_index.json"
    write_class_index(path, ["n01", "n02"], ["tench", "goldfish"])
    assert read_class_index(path) == [("n01", "tench"), ("n02", "goldfish")]
    path.write_text('{"0": ["a", "a"], "2": ["b", "b"]}')
    with pytest.raises(InferKitError, match="malformed"):
        read_class_index(path)

