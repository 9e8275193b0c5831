"""EventBridge event patterns, one test per operator: the examples of EventBridge's documentation
("Content filtering in Amazon EventBridge event patterns", "Comparison operators for use in event
patterns"), each with an event it matches and one it does not."""
from __future__ import annotations

import pytest

from chalicelib.service.patterns import InvalidPattern, check, matches

EC2 = {
    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2", "account": "111122223333", "time": "2017-12-22T18:43:48Z", "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated",
               "c-count": 5, "d-count": 7, "x-limit": 301.8, "source-ip": "10.0.0.123", "FileName": "photo.PNG"},
}


def event(**detail) -> dict:
    return {**EC2, "detail": {**EC2["detail"], **detail}}


def both(pattern: dict, matching: dict, other: dict) -> None:
    check(pattern)
    assert matches(pattern, matching)
    assert not matches(pattern, other)


def test_exact_values_and_and():
    both({"source": ["aws.ec2"], "detail": {"state": ["terminated", "stopped"]}},
         EC2, event(state="running"))
    assert not matches({"source": ["aws.ec2"], "detail-type": ["Other"]}, EC2)  # every key must match


def test_numbers_compare_as_numbers_and_strings_as_strings():
    both({"detail": {"c-count": [5.0]}}, EC2, event(**{"c-count": "5"}))
    assert not matches({"detail": {"c-count": ["5"]}}, EC2)


def test_empty_string_and_null_are_values():
    both({"detail": {"LastName": [""]}}, event(LastName=""), EC2)
    both({"detail": {"LastName": [None]}}, event(LastName=None), event(LastName=""))


def test_prefix():
    both({"time": [{"prefix": "2017-12-22"}]}, EC2, {**EC2, "time": "2017-10-02T18:43:48Z"})


def test_prefix_ignoring_case():
    both({"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}},
         event(service="eventbridge"), event(service="lambda"))


def test_suffix_and_suffix_ignoring_case():
    both({"detail": {"FileName": [{"suffix": ".PNG"}]}}, EC2, event(FileName="photo.png"))
    both({"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}, event(FileName="a.png"),
         event(FileName="a.jpg"))


def test_anything_but_value_list_and_number():
    both({"detail": {"state": [{"anything-but": "initializing"}]}}, EC2, event(state="initializing"))
    both({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}, EC2, event(state="stopped"))
    both({"detail": {"x-limit": [{"anything-but": 123}]}}, EC2, event(**{"x-limit": 123}))
    assert not matches({"detail": {"absent": [{"anything-but": "x"}]}}, EC2)  # only a present value


def test_anything_but_prefix_suffix_ignore_case_and_wildcard():
    both({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, EC2, event(state="initializing"))
    both({"region": [{"anything-but": {"prefix": "us-"}}]}, {**EC2, "region": "eu-west-1"}, EC2)
    both({"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}}, EC2, event(FileName="a.txt"))
    both({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["initializing", "STOPPED"]}}]}},
         EC2, event(state="Stopped"))
    both({"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}},
         event(FilePath="/usr/bin/x"), event(FilePath="/usr/lib/x"))


def test_numeric_ranges():
    both({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}],
                     "x-limit": [{"numeric": ["=", 3.018e2]}]}}, EC2, event(**{"c-count": 6}))
    assert not matches({"detail": {"c-count": [{"numeric": [">", 0]}]}}, event(**{"c-count": "5"}))


def test_exists():
    both({"detail": {"state": [{"exists": True}]}}, EC2, {**EC2, "detail": {}})
    both({"detail": {"state": [{"exists": False}]}}, {**EC2, "detail": {}}, EC2)
    assert not matches({"detail": [{"exists": True}]}, EC2)  # a leaf test: an object is no leaf


def test_equals_ignore_case():
    both({"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]},
         EC2, {**EC2, "detail-type": "Other"})


def test_wildcard():
    both({"detail": {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}},
         event(EventBusArn="arn:aws:events:us-east-1:123456789012:event-bus/orders"),
         event(EventBusArn="arn:aws:events:eu-west-1:123456789012:event-bus/orders"))
    both({"detail": {"FileName": [{"wildcard": "*.PNG"}]}}, EC2, event(FileName="photo.png"))
    both({"detail": {"dir": [{"wildcard": "dir/*/*.png"}]}}, event(dir="dir/a/b.png"), event(dir="dir/b.png"))
    both({"detail": {"name": [{"wildcard": "a\\*b"}]}}, event(name="a*b"), event(name="axb"))


def test_cidr():
    both({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, EC2, event(**{"source-ip": "10.0.1.1"}))


def test_or_at_the_top_and_inside():
    documented = {"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]},
                                     {"d-count": [{"numeric": ["<", 10]}]},
                                     {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}}
    both(documented, event(**{"c-count": 50, "d-count": 50}),  # the x-limit alone matches
         event(**{"c-count": 50, "d-count": 50, "x-limit": 1}))
    pattern = {"source": ["aws.ec2"],
               "$or": [{"detail": {"c-count": [{"numeric": [">", 10]}]}}, {"detail": {"d-count": [7]}}]}
    both(pattern, EC2, event(**{"d-count": 8}))
    assert not matches({**pattern, "source": ["aws.s3"]}, EC2)  # and the keys beside it
    both({"detail": {"$or": [{"state": ["running"]}, {"instance-id": [{"prefix": "i-1"}]}]}},
         EC2, event(**{"instance-id": "i-2"}))


def test_an_array_value_matches_when_any_element_does():
    both({"resources": [{"suffix": "abcdef0"}]}, EC2, {**EC2, "resources": ["arn:other"]})
    both({"detail": {"items": {"sku": ["b"]}}}, event(items=[{"sku": "a"}, {"sku": "b"}]), event(items=[{"sku": "a"}]))


@pytest.mark.parametrize("pattern", [
    {}, [], {"source": "aws.ec2"}, {"source": []}, {"source": [{"prefix": 1}]}, {"source": [{"bogus": 1}]},
    {"a": [{"numeric": [">"]}]}, {"a": [{"numeric": ["!", 1]}]}, {"a": [{"exists": "yes"}]},
    {"$or": [{"a": [1]}]}, {"a": [{"anything-but": {"numeric": [">", 1]}}]}, {"a": [{"cidr": "nope"}]},
    {"a": [{"prefix": "x", "suffix": "y"}]}, {"a": [{"anything-but": []}]},
])
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(InvalidPattern):
        check(pattern)
