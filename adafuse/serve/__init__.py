"""An ensemble behind an OpenAI-compatible HTTP API.

    python -m adafuse.serve                               # the embedded pair on 127.0.0.1:8000
    python -m adafuse.serve models=llama31_mistral serve.port=9000 batch_size=16

- `config.py`: the Hydra schema (`conf/serve.yaml`) and the checks, before any model loads;
- `requests.py`: a request body as decoding parameters, or a 400 naming the field;
- `chat.py`: the models as served (each one renders a chat request with its own template);
- `scheduler.py`: the one thread that drives the decoder's `Session` (requests join the batch
  between rounds, leave it when they finish or their client goes away);
- `app.py`: the FastAPI routes; `__main__.py`: the command.
"""
