"""Framework adapters: the gate's tools in the shapes agent frameworks take.

One thin module per framework, each an optional extra:

- `warded.adapters.openai` (`warded[openai]`): Chat Completions and Responses
  tool definitions, and handlers that run a response's tool calls.
- `warded.adapters.anthropic` (`warded[anthropic]`): Messages API tools, and
  `tool_use` blocks answered with `tool_result` blocks.
- `warded.adapters.langchain` (`warded[langchain]`): gate tools as LangChain
  tools, and existing LangChain tools registered behind the gate.
- `warded.adapters.agents` (`warded[agents]`): gate tools as function tools
  of the OpenAI Agents SDK.

The gate does the work: every listing is `gate.tools(principal, session)`,
every call `gate.call` / `gate.acall` with the model's tool-call id, and every
refusal reaches the model as `Refusal.to_model()`.
"""
