"""Date filters and now(): Java patterns, Kestra's named formats, time zones, arithmetic."""

import datetime as dt

import pytest

from orchestrator.templating import TemplateError, evaluate, render

# Kestra's DateFilterTest date: 2013-09-08T16:19:12.123456+01
CONTEXT = {"zoned": "2013-09-08T16:19:12.123456+01:00", "epoch": 1378653552,
           "execution": {"startDate": "2024-03-15T08:30:00.000Z"}}


def r(template: str) -> str:
    return render(template, CONTEXT)


@pytest.mark.parametrize("template,expected", [
    ("{{ zoned | date(format='iso', timeZone='Europe/Paris') }}", "2013-09-08T17:19:12.123456+02:00"),
    ("{{ zoned | date(format='iso_sec', timeZone='Europe/Paris') }}", "2013-09-08T17:19:12+02:00"),
    ("{{ zoned | date }}", "2013-09-08T15:19:12.123456Z"),  # iso in UTC by default
    ("{{ zoned | date('yyyy-MM-dd HH:mm:ss.SSSSSSXXX', timeZone='UTC') }}", "2013-09-08 15:19:12.123456Z"),
    ("{{ zoned | date('sql', timeZone='UTC') }}", "2013-09-08 15:19:12.123456"),
    ("{{ zoned | date('sql_seq', timeZone='UTC') }}", "2013-09-08 15:19:12"),
    ("{{ execution.startDate | date('yyyy-MM-dd') }}", "2024-03-15"),
    ("{{ execution.startDate | date(\"yyyy-MM-dd'T'HH:mm:ssX\", timeZone='UTC') }}", "2024-03-15T08:30:00Z"),
    ("{{ execution.startDate | date('HH:mm z', timeZone='America/New_York') }}", "04:30 EDT"),
    ("{{ execution.startDate | date('HH:mm xxx', timeZone='Asia/Kolkata') }}", "14:00 +05:30"),
    ("{{ execution.startDate | date('HH:mm Z', timeZone='+02:00') }}", "10:30 +0200"),
    ("{{ execution.startDate | date('HH:mm VV', timeZone='Europe/Paris') }}", "09:30 Europe/Paris"),
    ("{{ execution.startDate | date('EEEE, MMMM d, yyyy h:mm a') }}", "Friday, March 15, 2024 8:30 AM"),
    ("{{ execution.startDate | date('EEE MMM dd yy') }}", "Fri Mar 15 24"),
    ("{{ execution.startDate | date('D Q w') }}", "75 1 11"),
    ("{{ execution.startDate | date(\"'Quarter' QQQ, 'o''clock' hh\") }}", "Quarter Q1, o'clock 08"),
    ("{{ execution.startDate | date('iso_date') }}", "2024-03-15Z"),
    ("{{ execution.startDate | date('iso_local_date') }}", "2024-03-15"),
    ("{{ execution.startDate | date('iso_local_date_time') }}", "2024-03-15T08:30:00"),
    ("{{ execution.startDate | date('iso_date_time', timeZone='Europe/Paris') }}",
     "2024-03-15T09:30:00+01:00[Europe/Paris]"),
    ("{{ zoned | date('iso_instant') }}", "2013-09-08T15:19:12.123456Z"),
    ("{{ execution.startDate | date('iso_offset_time', timeZone='+01:00') }}", "09:30:00+01:00"),
    ("{{ execution.startDate | date('iso_week_date') }}", "2024-W11-5Z"),
    ("{{ execution.startDate | date('iso_ordinal_date') }}", "2024-075Z"),
    ("{{ execution.startDate | date('rfc_1123_date_time') }}", "Fri, 15 Mar 2024 08:30:00 GMT"),
    ("{{ execution.startDate | date('short') }}", "3/15/24, 8:30 AM"),
    ("{{ execution.startDate | date('medium') }}", "Mar 15, 2024, 8:30:00 AM"),
    ("{{ epoch | date('yyyy-MM-dd HH:mm:ss') }}", "2013-09-08 15:19:12"),  # epoch seconds
])
def test_date_formatting(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{{ 'July 24, 2001' | date('yyyy-MM-dd', existingFormat='MMMM dd, yyyy') }}", "2001-07-24"),
    ("{{ '2001-July-24' | date(existingFormat='yyyy-MMMM-d', format='yyyy/MMMM/d') }}", "2001/July/24"),
    ("{{ '2013-09-08T17:19:12+02:00' | date(timeZone='Europe/Paris') }}", "2013-09-08T17:19:12.000000+02:00"),
    ("{{ '2013-09-08T17:19:12' | date(timeZone='Europe/Paris') }}", "2013-09-08T17:19:12.000000+02:00"),
    ("{{ '2013-09-08' | date(timeZone='Europe/Paris') }}", "2013-09-08T00:00:00.000000+02:00"),
    ("{{ '2013-09-08T17:19:12.123456789Z' | date('HH:mm:ss.SSSSSSSSS') }}", "17:19:12.123456000"),
    ("{{ '2013-09-08T17:19:12+02:00[Europe/Paris]' | date('HH:mm VV') }}", "15:19 UTC"),
    ("{{ 'Tue, 08 Feb 2022 19:38:26 GMT' | date(existingFormat='rfc_1123_date_time', timeZone='Europe/Paris') }}",
     "2022-02-08T20:38:26.000000+01:00"),
    ("{{ '20240131' | date('yyyy-MM-dd', existingFormat='yyyyMMdd') }}", "2024-01-31"),
    ("{{ '31/01/2024 01:30 PM' | date('HH:mm', existingFormat='dd/MM/yyyy hh:mm a') }}", "13:30"),
    ("{{ '2024-01-31 10:00 +0100' | date('iso_sec', existingFormat='yyyy-MM-dd HH:mm Z') }}",
     "2024-01-31T09:00:00Z"),
    ("{{ '2024-01-31 10:00:00.123456' | date('iso', existingFormat='sql') }}", "2024-01-31T10:00:00.123456Z"),
])
def test_date_parsing(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{{ zoned | dateAdd(-1, 'DAYS', timeZone='Europe/Paris') }}", "2013-09-07T17:19:12.123456+02:00"),
    ("{{ execution.startDate | dateAdd(2, 'HOURS') }}", "2024-03-15T10:30:00.000000Z"),
    ("{{ execution.startDate | dateAdd(90, 'MINUTES', format='HH:mm') }}", "10:00"),
    ("{{ execution.startDate | dateAdd(1, 'WEEKS', format='yyyy-MM-dd') }}", "2024-03-22"),
    ("{{ '2024-01-31T00:00:00Z' | dateAdd(1, 'MONTHS', format='yyyy-MM-dd') }}", "2024-02-29"),
    ("{{ '2024-02-29T00:00:00Z' | dateAdd(1, 'YEARS', format='yyyy-MM-dd') }}", "2025-02-28"),
    ("{{ execution.startDate | dateAdd(1500, 'MILLIS', format='ss.SSS') }}", "01.500"),
    ("{{ execution.startDate | dateAdd(1, 'seconds', format='ss') }}", "01"),
    ("{{ '2024-03-30T12:00:00+01:00[Europe/Paris]' | dateAdd(1, 'DAYS', format='iso_sec', timeZone='Europe/Paris') }}",
     "2024-03-31T12:00:00+02:00"),  # days keep the wall-clock time across a DST change
])
def test_date_add(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template,expected", [
    ("{{ zoned | timestamp(timeZone='Europe/Paris') }}", "1378653552"),
    ("{{ zoned | timestampMilli }}", "1378653552123"),
    ("{{ zoned | timestampMicro }}", "1378653552123456"),
    ("{{ zoned | timestampNano(timeZone='Asia/Kolkata') }}", "1378653552123456000"),
    ("{{ (zoned | timestamp) > (zoned | dateAdd(-1, 'DAYS') | timestamp) }}", "true"),
    ("{{ '1970-01-01T00:00:00Z' | timestamp }}", "0"),
    ("{{ '1969-12-31T23:59:59.5Z' | timestamp }}", "-1"),  # floor, as toEpochSecond
])
def test_timestamps(template, expected):
    assert r(template) == expected


def test_timestamps_are_numbers_for_evaluate():
    assert evaluate("zoned | timestampMilli", CONTEXT) == 1378653552123


def test_null_input_gives_null():
    assert render("[{{ d | date('yyyy') }}][{{ d | dateAdd(1, 'DAYS') }}][{{ d | timestamp }}]", {"d": None}) \
        == "[][][]"


def test_datetime_values_from_a_context_are_accepted():
    context = {"d": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC), "day": dt.date(2024, 5, 6)}
    assert render("{{ d | date('yyyy-MM-dd HH:mm') }} {{ day | date('HH:mm') }}", context) == "2024-05-06 07:08 12:00"


def test_now():
    before = dt.datetime.now(dt.UTC)
    rendered = render("{{ now() }}", {})
    parsed = dt.datetime.fromisoformat(rendered)
    assert rendered.endswith("Z") and len(rendered) == len("2024-01-01T00:00:00.000000Z")
    assert abs((parsed - before).total_seconds()) < 5
    assert render("{{ now(format='iso_local_date') }}", {}) == dt.datetime.now(dt.UTC).date().isoformat()
    assert render("{{ now(timeZone='Asia/Tokyo') }}", {}).endswith("+09:00")
    assert render("{{ now() | dateAdd(-1, 'DAYS') | date('yyyy-MM-dd') }}", {}) == \
        (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()


@pytest.mark.parametrize("template,message", [
    ("{{ 'yesterday' | date('yyyy') }}", "Text 'yesterday' could not be parsed as an ISO-8601 date"),
    ("{{ '2024/01/01' | date(existingFormat='yyyy-MM-dd') }}",
     "Text '2024/01/01' could not be parsed with the pattern 'yyyy-MM-dd'"),
    ("{{ '2024-02-30' | date(existingFormat='yyyy-MM-dd') }}", "is not a valid date"),
    ("{{ zoned | date('yyyy', timeZone='Mars/Olympus') }}", "Unknown time zone: Mars/Olympus"),
    ("{{ zoned | date('yyyy-tt') }}", "Unknown pattern letter: t"),
    ("{{ zoned | date(\"'open\") }}", "Pattern ends with an incomplete string literal"),
    ("{{ zoned | date('short', existingFormat='short') }}", "can format dates but not parse them"),
    ("{{ zoned | dateAdd(1, 'FORTNIGHTS') }}", "Unknown time unit 'FORTNIGHTS'"),
    ("{{ zoned | dateAdd(1.5, 'DAYS') }}", "The dateAdd amount must be an integer, not 1.5"),
    ("{{ [1] | date }}", "Unable to read a date from a value of type list"),
    ("{{ zoned | date(5) }}", "The date format must be a string"),
])
def test_date_errors(template, message):
    with pytest.raises(TemplateError) as caught:
        r(template)
    assert message in str(caught.value)
