#!/usr/bin/env python3
"""The official OpenAI and Anthropic Python SDKs against a running `rulec serve` proxy.

Each check is one use an agent makes of its SDK with `base_url` pointed at the gateway:
plain and streamed calls on both front ends, each front end served by a model of the
other kind (translation both ways), `model="auto"` routed by an `x-rulec-*` header,
the `x-rulec-*` answer headers read from the raw response, a wrong client key, and an
unknown model. It prints one line per check and stops at the first failure, exit 1,
with what was expected and what came.

    python tests/python/sdk_check.py --base-url http://127.0.0.1:PORT --key KEY \
        --openai-model gpt_fake --anthropic-model claude_fake \
        --auto code_generation=claude_fake --auto general=gpt_fake

`--openai-model` names a policy model served by an OpenAI-kind provider,
`--anthropic-model` one served by an Anthropic-kind provider; `--openai-marker` and
`--anthropic-marker` are text their answers must contain (to tell which provider
answered). `--only` runs some checks by name (`--list` names them), e.g. against one
provider directly. Exit codes: 0 every check passed, 1 a check failed, 2 bad usage or
the SDKs are missing (`pip install -r tests/python/requirements.txt`).
"""

import argparse
import sys

try:
    import anthropic
    import openai
except ImportError as e:  # pragma: no cover - depends on the environment
    print(
        f"sdk_check: {e}; install the SDKs: pip install -r tests/python/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(2)

SYSTEM = "You are a test. Be brief."
PROMPT = "Say hello to the SDK check."
MAX_TOKENS = 64
UNKNOWN_MODEL = "no_such_model_sdk_check"


class CheckFailed(Exception):
    """A check's expectation that did not hold."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def expect_marker(text, marker, what):
    expect(bool(text), f"{what}: the answer is empty")
    if marker:
        expect(marker in text, f"{what}: the answer {text!r} does not contain {marker!r}")


class Checks:
    """The checks, each a method `check_<name>` (dashes written as underscores)."""

    def __init__(self, args):
        self.args = args
        self.openai = self.openai_client(args.key)
        self.anthropic = self.anthropic_client(args.key)

    def openai_client(self, key):
        return openai.OpenAI(
            base_url=self.args.base_url.rstrip("/") + "/v1",
            api_key=key,
            max_retries=0,
            timeout=self.args.timeout,
        )

    def anthropic_client(self, key):
        return anthropic.Anthropic(
            base_url=self.args.base_url.rstrip("/"),
            api_key=key,
            max_retries=0,
            timeout=self.args.timeout,
        )

    # ---- calls shared by the checks ----

    def chat(self, model, client=None, **extra):
        client = client or self.openai
        return client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": PROMPT},
            ],
            max_tokens=MAX_TOKENS,
            **extra,
        )

    def message(self, model, client=None, **extra):
        client = client or self.anthropic
        return client.messages.create(
            model=model,
            max_tokens=MAX_TOKENS,
            system=SYSTEM,
            messages=[{"role": "user", "content": PROMPT}],
            **extra,
        )

    def openai_plain(self, model, marker, what):
        completion = self.chat(model)
        choice = completion.choices[0]
        expect_marker(choice.message.content, marker, what)
        expect(choice.finish_reason == "stop", f"{what}: finish_reason {choice.finish_reason!r}, expected 'stop'")
        usage = completion.usage
        expect(usage is not None, f"{what}: no usage")
        expect(usage.prompt_tokens > 0 and usage.completion_tokens > 0, f"{what}: usage {usage}")
        return choice.message.content

    def openai_stream(self, model, marker, what):
        stream = self.chat(model, stream=True, stream_options={"include_usage": True})
        text, finish, usage = [], None, None
        for chunk in stream:
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
            if chunk.usage is not None:
                expect(not chunk.choices, f"{what}: the usage chunk has choices")
                usage = chunk.usage
        text = "".join(text)
        expect_marker(text, marker, what)
        expect(finish == "stop", f"{what}: finish_reason {finish!r}, expected 'stop'")
        expect(usage is not None, f"{what}: no usage chunk although include_usage was asked")
        expect(usage.completion_tokens > 0, f"{what}: usage {usage}")
        return text

    def anthropic_plain(self, model, marker, what):
        msg = self.message(model)
        text = "".join(b.text for b in msg.content if b.type == "text")
        expect_marker(text, marker, what)
        expect(msg.stop_reason == "end_turn", f"{what}: stop_reason {msg.stop_reason!r}, expected 'end_turn'")
        expect(msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, f"{what}: usage {msg.usage}")
        return text

    def anthropic_stream(self, model, marker, what):
        with self.anthropic.messages.stream(
            model=model,
            max_tokens=MAX_TOKENS,
            system=SYSTEM,
            messages=[{"role": "user", "content": PROMPT}],
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        expect_marker(text, marker, what)
        expect(final.stop_reason == "end_turn", f"{what}: stop_reason {final.stop_reason!r}, expected 'end_turn'")
        expect(final.usage.input_tokens > 0, f"{what}: no input tokens in message_start: {final.usage}")
        expect(final.usage.output_tokens > 0, f"{what}: no output tokens: {final.usage}")
        return text

    # ---- the checks ----

    def check_openai_plain(self):
        a = self.args
        text = self.openai_plain(a.openai_model, a.openai_marker, "openai front end, openai-kind model")
        return f"{a.openai_model}: {text!r}"

    def check_openai_stream(self):
        a = self.args
        text = self.openai_stream(a.openai_model, a.openai_marker, "openai front end streamed")
        plain = self.openai_plain(a.openai_model, a.openai_marker, "openai front end, openai-kind model")
        expect(text == plain, f"the streamed text {text!r} differs from the plain answer {plain!r}")
        return f"{a.openai_model}: {text!r} with a usage chunk"

    def check_anthropic_plain(self):
        a = self.args
        text = self.anthropic_plain(a.anthropic_model, a.anthropic_marker, "anthropic front end, anthropic-kind model")
        return f"{a.anthropic_model}: {text!r}"

    def check_anthropic_stream(self):
        a = self.args
        text = self.anthropic_stream(a.anthropic_model, a.anthropic_marker, "anthropic front end streamed")
        plain = self.anthropic_plain(a.anthropic_model, a.anthropic_marker, "anthropic front end")
        expect(text == plain, f"the streamed text {text!r} differs from the plain answer {plain!r}")
        return f"{a.anthropic_model}: {text!r}"

    def check_openai_to_anthropic(self):
        a = self.args
        what = "openai client, anthropic-kind model"
        plain = self.openai_plain(a.anthropic_model, a.anthropic_marker, what)
        streamed = self.openai_stream(a.anthropic_model, a.anthropic_marker, what + " streamed")
        expect(streamed == plain, f"{what}: streamed {streamed!r} differs from plain {plain!r}")
        return f"{a.anthropic_model}: {plain!r}, plain and streamed"

    def check_anthropic_to_openai(self):
        a = self.args
        what = "anthropic client, openai-kind model"
        plain = self.anthropic_plain(a.openai_model, a.openai_marker, what)
        streamed = self.anthropic_stream(a.openai_model, a.openai_marker, what + " streamed")
        expect(streamed == plain, f"{what}: streamed {streamed!r} differs from plain {plain!r}")
        return f"{a.openai_model}: {plain!r}, plain and streamed"

    def check_openai_headers(self):
        a = self.args
        raw = self.openai.chat.completions.with_raw_response.create(
            model=a.openai_model,
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=MAX_TOKENS,
        )
        expect_rulec_headers(raw.headers, a.openai_model, "openai front end")
        expect_marker(raw.parse().choices[0].message.content, a.openai_marker, "openai front end")
        return describe_headers(raw.headers)

    def check_anthropic_headers(self):
        a = self.args
        raw = self.anthropic.messages.with_raw_response.create(
            model=a.anthropic_model,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": PROMPT}],
        )
        expect_rulec_headers(raw.headers, a.anthropic_model, "anthropic front end")
        msg = raw.parse()
        expect_marker("".join(b.text for b in msg.content if b.type == "text"), a.anthropic_marker, "anthropic front end")
        return describe_headers(raw.headers)

    def check_openai_auto(self):
        expect(self.args.auto, "no --auto TASK=MODEL given")
        for task, model in self.args.auto:
            raw = self.openai.chat.completions.with_raw_response.create(
                model="auto",
                messages=[{"role": "user", "content": PROMPT}],
                max_tokens=MAX_TOKENS,
                extra_headers={"x-rulec-task-type": task},
            )
            got = raw.headers.get("x-rulec-model")
            expect(got == model, f"model=auto with x-rulec-task-type: {task} was served by {got!r}, expected {model!r}")
            expect(raw.parse().choices[0].message.content, f"model=auto ({task}): the answer is empty")
        return ", ".join(f"{t} -> {m}" for t, m in self.args.auto)

    def check_anthropic_auto(self):
        expect(self.args.auto, "no --auto TASK=MODEL given")
        for task, model in self.args.auto:
            raw = self.anthropic.messages.with_raw_response.create(
                model="auto",
                max_tokens=MAX_TOKENS,
                messages=[{"role": "user", "content": PROMPT}],
                extra_headers={"x-rulec-task-type": task},
            )
            got = raw.headers.get("x-rulec-model")
            expect(got == model, f"model=auto with x-rulec-task-type: {task} was served by {got!r}, expected {model!r}")
            expect(raw.parse().content, f"model=auto ({task}): the answer is empty")
        return ", ".join(f"{t} -> {m}" for t, m in self.args.auto)

    def check_openai_wrong_key(self):
        client = self.openai_client(self.args.key + "-wrong")
        try:
            self.chat(self.args.openai_model, client=client)
        except openai.AuthenticationError as e:
            return f"AuthenticationError ({e.status_code})"
        raise CheckFailed("a wrong client key was answered instead of raising openai.AuthenticationError")

    def check_anthropic_wrong_key(self):
        client = self.anthropic_client(self.args.key + "-wrong")
        try:
            self.message(self.args.anthropic_model, client=client)
        except anthropic.AuthenticationError as e:
            return f"AuthenticationError ({e.status_code})"
        raise CheckFailed("a wrong client key was answered instead of raising anthropic.AuthenticationError")

    def check_openai_unknown_model(self):
        try:
            self.chat(UNKNOWN_MODEL)
        except openai.BadRequestError as e:
            expect(UNKNOWN_MODEL in str(e), f"the error does not name the model: {e}")
            return f"BadRequestError: {e.message}"
        raise CheckFailed(f"model {UNKNOWN_MODEL!r} was answered instead of raising openai.BadRequestError")

    def check_anthropic_unknown_model(self):
        try:
            self.message(UNKNOWN_MODEL)
        except anthropic.BadRequestError as e:
            expect(UNKNOWN_MODEL in str(e), f"the error does not name the model: {e}")
            return f"BadRequestError: {e.message}"
        raise CheckFailed(f"model {UNKNOWN_MODEL!r} was answered instead of raising anthropic.BadRequestError")


RULEC_HEADERS = ("x-rulec-model", "x-rulec-provider", "x-rulec-attempts", "x-rulec-rule", "x-rulec-decision")


def expect_rulec_headers(headers, model, what):
    missing = [h for h in RULEC_HEADERS if not headers.get(h)]
    expect(not missing, f"{what}: the answer lacks {', '.join(missing)}")
    got = headers.get("x-rulec-model")
    expect(got == model, f"{what}: x-rulec-model is {got!r}, expected {model!r}")
    attempts = headers.get("x-rulec-attempts")
    expect(attempts.isdigit() and int(attempts) >= 1, f"{what}: x-rulec-attempts is {attempts!r}")


def describe_headers(headers):
    return " ".join(f"{h}={headers.get(h)}" for h in RULEC_HEADERS)


CHECKS = [name[len("check_"):].replace("_", "-") for name in vars(Checks) if name.startswith("check_")]


def auto_pair(text):
    task, sep, model = text.partition("=")
    if not (sep and task and model):
        raise argparse.ArgumentTypeError(f"`{text}` is not TASK_TYPE=MODEL")
    return task, model


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", help="the gateway, e.g. http://127.0.0.1:8080 (without /v1)")
    p.add_argument("--key", help="a client key the gateway accepts (RULEC_API_KEYS)")
    p.add_argument("--openai-model", help="a policy model served by an OpenAI-kind provider")
    p.add_argument("--anthropic-model", help="a policy model served by an Anthropic-kind provider")
    p.add_argument("--openai-marker", default="", help="text the OpenAI-kind model's answers contain")
    p.add_argument("--anthropic-marker", default="", help="text the Anthropic-kind model's answers contain")
    p.add_argument("--auto", type=auto_pair, action="append", default=[], metavar="TASK=MODEL",
                   help="model=auto with x-rulec-task-type: TASK must be served by MODEL (repeatable)")
    p.add_argument("--only", help="comma-separated check names (default: all)")
    p.add_argument("--list", action="store_true", help="print the check names and exit")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
    args = p.parse_args(argv)
    if args.list:
        return args
    missing = [f for f in ("base_url", "key", "openai_model", "anthropic_model") if not getattr(args, f)]
    if missing:
        p.error("missing " + ", ".join("--" + f.replace("_", "-") for f in missing))
    args.checks = CHECKS
    if args.only:
        args.checks = [c.strip() for c in args.only.split(",") if c.strip()]
        unknown = [c for c in args.checks if c not in CHECKS]
        if unknown:
            p.error(f"unknown check(s) {', '.join(unknown)}; the checks: {', '.join(CHECKS)}")
    return args


def main(argv):
    args = parse_args(argv)
    if args.list:
        print("\n".join(CHECKS))
        return 0
    print(f"sdk_check: openai {openai.__version__}, anthropic {anthropic.__version__}, gateway {args.base_url}")
    checks = Checks(args)
    for name in args.checks:
        try:
            detail = getattr(checks, "check_" + name.replace("-", "_"))()
        except CheckFailed as e:
            print(f"FAIL {name}: {e}")
            return 1
        except (openai.APIError, anthropic.APIError) as e:
            status = getattr(e, "status_code", None)
            print(f"FAIL {name}: the SDK raised {type(e).__name__}" + (f" ({status})" if status else "") + f": {e}")
            return 1
        except Exception as e:  # an answer the SDK could not make sense of
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            return 1
        print(f"ok   {name}: {detail}")
    print(f"sdk_check: all {len(args.checks)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
