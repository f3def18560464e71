"""The work behind the CLI's `check` command, kept apart so that `--help` stays fast."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone

from handler.config import ConfigurationError, load_settings
from handler.core import ids
from handler.core.events import Trigger
from handler.core.message import InvalidMessage, parse_fields
from handler.core.render import render_text
from handler.credentials import credentials_from_environment
from handler.css import errors as css_errors
from handler.css.client import CssClient
from handler.css.endpoints import EndpointError, resolve_endpoint

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 3


def _error(text: str) -> None:
    print(f"css-upgrade-scout: {text}", file=sys.stderr)


def run_check_command(args: argparse.Namespace) -> int:
    """Run `css-upgrade-scout check`; see the CLI module for the exit statuses."""
    from handler.check import CheckFailed, run_check

    try:
        settings = load_settings()
        endpoint = args.endpoint or settings.css_endpoint
        if endpoint:
            try:
                resolve_endpoint(args.region or settings.css_region or "ap-southeast-1", endpoint)
            except EndpointError as error:
                raise EndpointError(str(error).replace("CSS_ENDPOINT", "--endpoint") if args.endpoint else str(error)) from None
        if not (args.project_id or settings.css_project_id):
            raise ConfigurationError("missing project: pass --project-id or set CSS_PROJECT_ID")
        if not (args.region or settings.css_region):
            raise ConfigurationError("missing region: pass --region or set CSS_REGION")
        fields: dict[str, object] = {"cluster_id": args.cluster_id, "source": "cli"}
        if args.project_id:
            fields["project_id"] = args.project_id
        if args.region:
            fields["region"] = args.region
        if args.profile:
            fields["policy_profile"] = args.profile
        message, policy = parse_fields(
            fields,
            default_project_id=settings.css_project_id,
            default_region=settings.css_region,
            reply_hosts=settings.slack_reply_hosts,
            policy=settings.policy,
            default_source="cli",
        )
        if args.types:
            types = [ids.upgrade_type(item.strip(), "--type") for item in args.types.split(",") if item.strip()]
            if not types:
                raise ids.InvalidValue("--type", args.types, "a comma-separated list of same, cross, cross-engine")
            policy = policy.with_upgrade_types(types)
        credentials = credentials_from_environment()
        if args.publish:
            _check_publish_settings(settings)
    except (ConfigurationError, InvalidMessage, ids.InvalidValue, EndpointError, ValueError) as error:
        _error(str(error).replace("invalid policy_profile", "invalid --profile"))
        return EXIT_USAGE

    client = CssClient(credentials, endpoint=endpoint)
    trigger = Trigger(source="cli", requested_by=os.environ.get("USER") or None, correlation_id=None, message_id=None)
    try:
        result = run_check(client, message, policy, trigger=trigger, agency=settings.upgrade_agency)
        event = result.event
        status = EXIT_OK
    except CheckFailed as failure:
        event = failure.event
        status = EXIT_FAILED
    except css_errors.CssError as error:
        _error(f"check failed: {error}")
        return EXIT_FAILED

    if args.json:
        print(event.to_json())
    else:
        print(render_text(event))

    if args.publish:
        status = max(status, _publish(event, settings, policy.renotify_after_days))
    return status


def _check_publish_settings(settings) -> None:
    """Find what `--publish` lacks before any CSS call: a target, AWS credentials and a region."""
    from handler.aws.client import AwsClient
    from handler.aws.errors import AwsConfigurationError

    if not settings.notify_topic_arn and not settings.notify_event_bus:
        raise ConfigurationError("nothing to publish to: set NOTIFY_TOPIC_ARN or NOTIFY_EVENT_BUS, or leave out --publish")
    aws = AwsClient()
    try:
        aws.credentials()
        _ = aws.region
    except AwsConfigurationError as error:
        raise ConfigurationError(f"--publish needs AWS credentials: {error}") from None


def _publish(event, settings, renotify_after_days: int) -> int:
    from handler.aws.client import AwsClient
    from handler.aws.errors import AwsError
    from handler.delivery.announce import announce
    from handler.delivery.ledger import AnnounceLedger
    from handler.delivery.publish import Broadcaster

    aws = AwsClient()
    broadcaster = Broadcaster(aws, topic_arn=settings.notify_topic_arn, event_bus=settings.notify_event_bus)
    ledger = AnnounceLedger(settings.dedupe_table, aws) if settings.dedupe_table else None
    try:
        announced = announce(event, broadcaster, ledger, renotify_after_days=renotify_after_days)
    except AwsError as error:
        _error(f"publish failed: {error}")
        return EXIT_FAILED
    if not announced:
        _error(f"not published: event {event.event_id} was already announced within {renotify_after_days} days")
        return EXIT_OK
    _error(f"published to {', '.join(broadcaster.targets)}")
    return EXIT_OK


def run_scan_command(args: argparse.Namespace) -> int:
    """Run `css-upgrade-scout scan`."""
    from handler.local.scan_cli import run

    return run(args)
