"""The matcher against EventBridge's documented semantics (the examples of aws/event-ruler's README and
the EventBridge user guide). The agreement with an independent implementation is in
test_eventbridge_agreement.py."""

from __future__ import annotations

import pytest

from matcarv_aiops.ingress.patterns import PatternError, matches, mismatch

EVENT = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
        "owner": None,
        "flag": True,
        "tags": ["prod", "web"],
        "nested": {"c1": 100},
        "empty": [],
    },
}


def detail(**pattern):
    return {"detail": {key.replace("_", "-"): value for key, value in pattern.items()}}


@pytest.mark.parametrize(
    "pattern, expected",
    [
        # exact values: any listed value; arrays in the event match on a non-empty intersection
        ({"source": ["aws.ec2"], "detail": {"state": ["initializing", "running"]}}, True),
        ({"source": ["aws.ec2"], "detail": {"state": ["stopped"]}}, False),
        ({"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"]}, True),
        (detail(tags=["staging", "web"]), True),
        (detail(tags=["staging"]), False),
        # JSON types: numbers match numbers (5 == 5.0), never strings or booleans; null matches null only
        (detail(c_count=[5]), True),
        (detail(c_count=[5.0]), True),
        (detail(c_count=["5"]), False),
        (detail(flag=[True]), True),
        (detail(flag=[1]), False),
        (detail(owner=[None]), True),
        (detail(missing=[None]), False),
        # prefix / suffix / equals-ignore-case: strings only
        ({"time": [{"prefix": "2017-10-02"}]}, True),
        ({"time": [{"prefix": "2017-10-03"}]}, False),
        ({"source": [{"suffix": "ec2"}]}, True),
        ({"source": [{"suffix": {"equals-ignore-case": "EC2"}}]}, True),
        ({"source": [{"prefix": {"equals-ignore-case": "AWS."}}]}, True),
        ({"source": [{"equals-ignore-case": "AWS.EC2"}]}, True),
        (detail(c_count=[{"prefix": "5"}]), False),
        # wildcard: * is any run; \* a literal star
        ({"source": [{"wildcard": "aws.*"}]}, True),
        ({"detail-type": [{"wildcard": "EC2*State-change*"}]}, True),
        ({"source": [{"wildcard": "aws.s*"}]}, False),
        ({"source": [{"wildcard": "aws\\*ec2"}]}, False),
        # anything-but: values, lists, prefix/suffix; never matches an absent field
        (detail(state=[{"anything-but": "initializing"}]), True),
        (detail(state=[{"anything-but": ["stopped", "running"]}]), False),
        (detail(x_limit=[{"anything-but": [100, 200, 300]}]), True),
        (detail(state=[{"anything-but": {"prefix": "run"}}]), False),
        (detail(state=[{"anything-but": {"suffix": "ing"}}]), False),
        (detail(state=[{"anything-but": {"equals-ignore-case": "RUNNING"}}]), False),
        (detail(missing=[{"anything-but": "x"}]), False),
        (detail(tags=[{"anything-but": "prod"}]), True),  # "web" is not prod
        # numeric: JSON numbers only
        (
            detail(
                c_count=[{"numeric": [">", 0, "<=", 5]}],
                d_count=[{"numeric": ["<", 10]}],
                x_limit=[{"numeric": ["=", 3.018e2]}],
            ),
            True,
        ),
        (detail(c_count=[{"numeric": [">", 5]}]), False),
        (detail(state=[{"numeric": [">", 0]}]), False),
        (detail(flag=[{"numeric": [">", 0]}]), False),
        # cidr
        (detail(source_ip=[{"cidr": "10.0.0.0/24"}]), True),
        (detail(source_ip=[{"cidr": "10.0.1.0/24"}]), False),
        # exists: leaf fields only
        (detail(c_count=[{"exists": True}]), True),
        (detail(c_count=[{"exists": False}]), False),
        (detail(missing=[{"exists": False}]), True),
        (detail(owner=[{"exists": True}]), True),  # null is a value
        (detail(nested=[{"exists": True}]), False),  # an object is not a leaf
        (detail(nested=[{"exists": False}]), True),
        (detail(empty=[{"exists": True}]), False),  # an empty array holds no value
        ({"detail": {"nested": {"c1": [100]}}}, True),
        ({"detail": {"state": {"sub": [{"exists": False}]}}}, True),  # below a leaf nothing exists
        # $or, nested
        ({"source": ["aws.ec2"], "$or": [{"detail": {"c-count": [1]}}, {"detail": {"d-count": [3]}}]}, True),
        ({"$or": [{"detail": {"c-count": [1]}}, {"detail": {"d-count": [4]}}]}, False),
        (
            {
                "detail": {
                    "$or": [
                        {"state": ["x"]},
                        {"c-count": [5], "$or": [{"d-count": [9]}, {"x-limit": [301.8]}]},
                    ]
                }
            },
            True,
        ),
    ],
)
def test_eventbridge_semantics(pattern, expected):
    assert matches(pattern, EVENT) is expected


EMPLOYEES = {
    "detail": {
        "employees": [
            [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}],
            [{"firstName": "Peter", "lastName": "Jones"}],
        ]
    }
}


def test_arrays_of_objects_are_crushed_out_even_when_nested():
    assert matches({"detail": {"employees": {"firstName": ["Anna"]}}}, EMPLOYEES)
    assert matches({"detail": {"employees": {"firstName": ["Peter"], "lastName": ["Jones"]}}}, EMPLOYEES)


def test_fields_matched_in_one_array_must_come_from_one_element():
    # event-ruler's rulesForJSONEvent (EventBridge's behaviour): no cross-element match.
    assert not matches({"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}}, EMPLOYEES)


def test_cloudwatch_metric_math_alarm_matches_on_any_one_metric():
    alarm = {
        "detail": {
            "configuration": {
                "metrics": [
                    {"id": "e1", "expression": "m1/m2"},
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_ELB_5XX_Count"}
                        },
                    },
                    {
                        "id": "m2",
                        "metricStat": {"metric": {"namespace": "AWS/ApplicationELB", "name": "RequestCount"}},
                    },
                ]
            }
        }
    }
    metric = {
        "detail": {
            "configuration": {
                "metrics": {
                    "metricStat": {
                        "metric": {"namespace": ["AWS/ApplicationELB"], "name": ["HTTPCode_ELB_5XX_Count"]}
                    }
                }
            }
        }
    }
    assert matches(metric, alarm)
    metric["detail"]["configuration"]["metrics"]["metricStat"]["metric"]["name"] = ["CPUUtilization"]
    assert not matches(metric, alarm)


def test_mismatch_names_the_first_failing_field():
    assert mismatch({"source": ["aws.ec2"], "detail": {"state": ["stopped"]}}, EVENT) == "detail.state"
    assert mismatch({"source": ["aws.ec2"]}, EVENT) is None
    assert "$or" in mismatch({"$or": [{"source": ["a"]}, {"region": ["b"]}]}, EVENT)


@pytest.mark.parametrize(
    "pattern, message",
    [
        ({"source": "aws.ec2"}, "source: a pattern value must be an object or an array"),
        (detail(c_count=[{"numeric": [">>", 1]}]), "numeric operator"),
        (detail(c_count=[{"numeric": [">", "1"]}]), "numeric operator"),
        (detail(c_count=[{"prefix": "a", "suffix": "b"}]), "exactly one operator"),
        (detail(state=[{"regex": "run.*"}]), "unknown pattern operator 'regex'"),
        (detail(state=[{"wildcard": "a**b"}]), "consecutive"),
        (detail(state=[{"wildcard": "a\\b"}]), "escapes"),
        (detail(state=[{"exists": "yes"}]), "exists takes true or false"),
    ],
)
def test_invalid_patterns_are_errors_naming_the_field(pattern, message):
    with pytest.raises(PatternError, match=message):
        matches(pattern, EVENT)
