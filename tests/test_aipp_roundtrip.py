"""Property tests: writer -> parser is the identity, and protobuf's own text parser agrees with ours.

The oracle is google.protobuf's ``text_format`` over a ``domi.InsertNewOps`` descriptor built from
the field table (field numbers of GraphEngine's insert_op.proto), so "reads what ATC reads" is
checked against the library ATC's parser implements, not against our own reading of it.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infer_kit.aipp.config import AippConfig, AippOp
from infer_kit.aipp.fields import ENUMS, FIELDS, INT32_RANGE, UINT32_RANGE, FieldSpec
from infer_kit.aipp.parse import parse_config
from infer_kit.aipp.write import format_value, render_config

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def value_strategy(spec: FieldSpec) -> st.SearchStrategy:
    if spec.kind == "bool":
        return st.booleans()
    if spec.kind == "enum":
        return st.sampled_from(ENUMS[spec.name])
    if spec.kind == "int32":
        return st.one_of(st.integers(*INT32_RANGE), st.integers(-300, 300))
    if spec.kind == "uint32":
        return st.one_of(st.integers(*UINT32_RANGE), st.integers(0, 10))
    if spec.kind == "float":
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    return st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


@st.composite
def ops(draw: st.DrawFn) -> AippOp:
    chosen = draw(st.lists(st.sampled_from(FIELDS), unique_by=lambda f: f.name, max_size=len(FIELDS)))
    return AippOp({spec.name: draw(value_strategy(spec)) for spec in chosen})


@given(st.lists(ops(), min_size=1, max_size=3))
@SETTINGS
def test_writer_output_parses_back_to_the_same_config(blocks):
    config = AippConfig(tuple(blocks))
    assert parse_config(render_config(config)) == config


@st.composite
def restyled(draw: st.DrawFn) -> tuple[AippOp, str]:
    """A config written in a random but valid style: spacing, order, separators, comments, brackets."""
    op = draw(ops())
    items = list(op.values.items())
    order = draw(st.permutations(range(len(items)))) if items else []
    opener, closer = draw(st.sampled_from([("aipp_op {", "}"), ("aipp_op{", "}"), ("aipp_op: {", "}"),
                                           ("aipp_op <", ">")]))
    lines = [draw(st.sampled_from(["", "# header comment"])), opener]
    for index in order:
        name, value = items[index]
        colon = draw(st.sampled_from([":", " : ", ": ", " :"]))
        end = draw(st.sampled_from(["", ",", ";", "  # note"]))
        text = format_value(name, value)
        spec = next(f for f in FIELDS if f.name == name)
        if spec.repeated and draw(st.booleans()):
            text = f"[{text}]"
        lines.append(f"{draw(st.sampled_from(['', '  ', chr(9)]))}{name}{colon}{text}{end}")
    lines.append(closer)
    return op, "\n".join(lines)


@given(restyled())
@SETTINGS
def test_any_valid_text_style_reads_the_same(case):
    op, text = case
    assert parse_config(text).ops == (op,)


def _oracle_class():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="infer_kit_insert_op_test.proto", package="domi",
                                               syntax="proto3")
    params = proto.message_type.add(name="AippOpParams")
    for enum_name, values in (("InputFormat", ENUMS["input_format"]), ("AippMode", ENUMS["aipp_mode"])):
        enum = params.enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    kinds = {
        "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
        "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
        "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
        "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
        "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        "enum": descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
    }
    extra = 200
    for spec in FIELDS:
        number = spec.number
        if number is None:  # doc-only fields: any unused number
            extra += 1
            number = extra
        field = params.field.add(name=spec.name, number=number, type=kinds[spec.kind])
        field.label = (descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if spec.repeated
                       else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
        if spec.kind == "enum":
            field.type_name = ".domi.AippOpParams." + ("AippMode" if spec.name == "aipp_mode" else "InputFormat")
    top = proto.message_type.add(name="InsertNewOps")
    top.field.add(name="aipp_op", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED, type_name=".domi.AippOpParams")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("domi.InsertNewOps"))


ORACLE = _oracle_class()


def _same(ours, theirs, kind: str) -> bool:
    if kind == "float":
        return float(np.float32(ours)) == theirs or (math.isnan(theirs) and math.isnan(ours))
    if kind == "enum":
        return ours == theirs
    return ours == theirs


@given(ops())
@SETTINGS
def test_protobuf_text_format_reads_our_output_as_we_do(op):
    from google.protobuf import text_format

    message = text_format.Parse(render_config(op), ORACLE())
    assert len(message.aipp_op) == 1
    theirs = message.aipp_op[0]
    for spec in FIELDS:
        value = getattr(theirs, spec.name)
        if spec.kind == "enum":
            value = ENUMS[spec.name][value]
        if spec.repeated:
            expected = [op.values[spec.name]] if spec.name in op.values else []
            assert len(value) == len(expected), spec.name
            assert all(_same(a, b, spec.kind) for a, b in zip(expected, value, strict=True)), spec.name
        else:
            default = {"bool": False, "enum": ENUMS.get(spec.name, ("",))[0], "string": ""}.get(spec.kind, 0)
            assert _same(op.values.get(spec.name, default), value, spec.kind), spec.name
