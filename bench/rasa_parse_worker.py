"""Parse messages with a trained Rasa model, in process; run by `.venv-rasa/bin/python`.

Used by `bench/nlu_rasa.py` so Rasa's parse latency is measured as tier0's is: per
message, in the same process as the model, with no HTTP in between. Reads one JSON
string (a message) per stdin line and writes one JSON object per line:
`{"intent", "confidence", "entities": [{"entity", "start", "end", "value"}], "ms",
"cpu_ms"}` (wall and CPU milliseconds of the parse).

Usage: python rasa_parse_worker.py MODEL.tar.gz < messages.jsonl > parses.jsonl
"""

import asyncio
import json
import logging
import os
import sys
import time

WARM_UP_MESSAGES = 5


def main() -> int:
    # Rasa logs to stdout; the answers get the real stdout to themselves.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    logging.disable(logging.WARNING)
    from rasa.core.agent import Agent

    model = sys.argv[1]
    agent = Agent.load(model)
    loop = asyncio.new_event_loop()
    messages = [json.loads(line) for line in sys.stdin if line.strip()]
    for text in messages[:WARM_UP_MESSAGES]:  # the first calls build TensorFlow graphs
        loop.run_until_complete(agent.parse_message(text))
    for text in messages:
        started, started_cpu = time.perf_counter(), time.process_time()
        result = loop.run_until_complete(agent.parse_message(text))
        elapsed_ms = (time.perf_counter() - started) * 1000
        cpu_ms = (time.process_time() - started_cpu) * 1000
        intent = result.get("intent") or {}
        parsed = {
            "intent": intent.get("name"),
            "confidence": intent.get("confidence"),
            "entities": [
                {
                    "entity": entity.get("entity"),
                    "start": entity.get("start"),
                    "end": entity.get("end"),
                    "value": entity.get("value"),
                }
                for entity in result.get("entities") or []
            ],
            "ms": elapsed_ms,
            "cpu_ms": cpu_ms,
        }
        answers.write(json.dumps(parsed) + "\n")
    answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
