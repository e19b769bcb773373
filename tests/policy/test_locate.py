"""Source locations for Cedar text: statements and the line of a parse error."""

from __future__ import annotations

import cedarpy

from warded.policy.locate import error_line, statements


def test_statements_start_at_their_first_annotation_and_skip_comments_and_strings() -> None:
    text = (
        "// a comment; with a semicolon\n"
        '@id("a;b")\n'
        "permit(principal, action, resource);\n"
        "\n"
        'forbid(principal, action, resource) when { "x;\\"y" == "z" };\n'
    )
    assert [line for line, _ in statements(text)] == [2, 5]


def test_error_line_points_at_the_line_where_the_parser_gives_up() -> None:
    text = (
        "permit(principal, action, resource);\n"
        "permit(principal, action, resource)\n"
        "when { context.a == };\n"
    )
    assert error_line(text, cedarpy.PolicySet.from_str) == 3


def test_a_parse_error_names_the_policy_it_is_in() -> None:
    from warded import BundleError, BundleFiles, PolicyBundle

    text = (
        "permit(principal, action, resource);\n"
        "permit(\n"
        "  principal,\n"
        "  action ==,\n"
        "  resource\n"
        ");\n"
    )
    files = BundleFiles((("p.cedar", text),), ("schema.cedarschema", "entity A;"))
    try:
        PolicyBundle.load(files)
    except BundleError as exc:
        (problem,) = exc.problems
        assert (problem.file, problem.line) == ("p.cedar", 2)
    else:
        raise AssertionError("a broken policy loaded")


def test_error_line_of_a_truncated_file_is_its_last_line() -> None:
    text = "permit(principal, action, resource);\npermit(principal,\n  action"
    assert error_line(text, cedarpy.PolicySet.from_str) == 3
