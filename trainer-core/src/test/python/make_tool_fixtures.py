#!/usr/bin/env python3
"""Independent reference for the tool-calling data tests (ToolCallParityTest).

Re-creates, from LLaMA-Factory's Python source (commit ff6d4d1, Apache-2.0), how a sharegpt row
with a `tools` column and function_call / observation turns becomes token ids:

  * data/converter.py   SharegptDatasetConverter (role alignment: user/observation at even
                        positions, assistant/function at odd ones) and OpenAIDatasetConverter
                        (tool_calls, merged tool results, its "detailed thinking off" system rule)
  * data/tool_utils.py  every ToolUtils' tool_formatter and function_formatter, copied verbatim
                        (the extractors left out); llama3's datetime.now() is the fixed TODAY
  * data/formatter.py   StringFormatter, EmptyFormatter, FunctionFormatter, ToolFormatter, copied
  * data/template.py    Template._encode (system + tool_text on the first turn), Llama2Template,
                        ReasoningTemplate, register_template and the tool_format override of
                        get_template_and_fix_tokenizer, for the templates spark-sft has
  * data/processor      SupervisedDatasetProcessor and UnsupervisedDatasetProcessor (infer_seqlen)

Token ids come from the tests' byte-level tokenizer (TestTokenizers: every UTF-8 byte is its own
id, the special tokens are 256.. in its order, bos <s>, eos </s>), so the fixtures hold no model
tokenizer. It writes into trainer-core/src/test/resources/tools/:

  glaive_toolcall_{en,zh}_demo.json  a subset of LLaMA-Factory's demo sets (rows picked below)
  openai_tools_demo.json             some of those rows in openai form (tool_calls, tool results)
  dataset_info.json                  their entries, the glaive ones as in LLaMA-Factory's data/dataset_info.json
  expected.json                      tool texts, function texts, per-row hashes of input_ids and
                                     labels for every template (and tool_format override), and a
                                     few examples written out in full

Regenerate from the repository root, with LLaMA-Factory's data folder (holding the demo sets):
    python3 trainer-core/src/test/python/make_tool_fixtures.py /path/to/LLaMA-Factory/data
`--all-rows --out DIR` writes every row of both sets to DIR instead; ToolCallParityTest reads
such a folder when run with -Dtools.fixtures=DIR. Needs only the standard library.
"""
import argparse
import hashlib
import json
import os
import re
from copy import deepcopy
from typing import Any, NamedTuple, Optional, Union

TODAY = "26 Jul 2024"   # the date llama3's tool prompt states (LLaMA-Factory: today)
CUTOFF_LEN = 1_000_000  # no truncation: every token is compared
IGNORE_INDEX = -100
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "tools")


def override(f):
    return f


# ------------------------------------------------------------------ data/tool_utils.py (verbatim)

class FunctionCall(NamedTuple):
    name: str
    arguments: str


DEFAULT_TOOL_PROMPT = (
    "You have access to the following tools:\n{tool_text}"
    "Use the following format if using a tool:\n"
    "```\n"
    "Action: tool name (one of [{tool_names}])\n"
    "Action Input: the input to the tool, in a JSON format representing the kwargs "
    """(e.g. ```{{"input": "hello world", "num_beams": 5}}```)\n"""
    "```\n"
)

GLM4_TOOL_PROMPT = (
    "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，"
    "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具{tool_text}"
)

GLM4_MOE_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, output the function name and arguments within the following XML format:"
    "\n<tool_call>{{function-name}}"
    "\n<arg_key>{{arg-key-1}}</arg_key>"
    "\n<arg_value>{{arg-value-1}}</arg_value>"
    "\n<arg_key>{{arg-key-2}}</arg_key>"
    "\n<arg_value>{{arg-value-2}}</arg_value>"
    "\n...\n</tool_call>\n"
)

LLAMA3_TOOL_PROMPT = (
    "Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n"
    "You have access to the following functions. To call a function, please respond with JSON for a function call. "
    """Respond in the format {{"name": function name, "parameters": dictionary of argument name and its value}}. """
    "Do not use variables.\n\n{tool_text}"
)

MINIMAX_M1_TOOL_PROMPT = (
    "You are provided with these tools:\n<tools>\n{tool_text}</tools>\n\n"
    "If you need to call tools, please respond with <tool_calls></tool_calls> XML tags, and provide tool-name and "
    "json-object of arguments, following the format below:\n<tool_calls>\n"
    """{{"name": <tool-name-1>, "arguments": <args-json-object-1>}}\n...\n</tool_calls>"""
)

MINIMAX_M2_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more tools to assist with the user query.\n"
    "Here are the tools available in JSONSchema format:\n\n<tools>\n{tool_text}</tools>\n\n"
    "When making tool calls, use XML format to invoke tools and pass parameters:\n"
    """\n<minimax:tool_call>\n<invoke name="tool-name-1">\n<parameter name="param-key-1">param-value-1</parameter>\n"""
    """<parameter name="param-key-2">param-value-2</parameter>\n...\n</invoke>\n</minimax:tool_call>"""
)

QWEN_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    """<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, """
    """"arguments": <args-json-object>}}\n</tool_call>"""
)

QWEN35_TOOL_PROMPT = (
    "\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>{tool_text}"
    "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n"
    "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: "
    "an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language "
    "BEFORE the function call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>"
)

SEED_TOOL_PROMPT = (
    "system\nYou are Doubao, a helpful AI assistant. You may call one or more functions to assist with the user query."
    "Tool List:\nYou are authorized to use the following tools (described in JSON Schema format). Before performing "
    "any task, you must decide how to call them based on the descriptions and parameters of these tools.{tool_text}\n"
    "工具调用请遵循如下格式:\n<seed:tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>value_1"
    "</parameter>\n<parameter=example_parameter_2>This is the value for the second parameter\nthat can span\nmultiple "
    "lines</parameter>\n</function>\n</seed:tool_call>\n"
)

LING_TOOL_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    """<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, """
    """"arguments": <args-json-object>}}\n</tool_call>"""
)

LFM2_TOOL_PROMPT = "List of tools: <|tool_list_start|>{tool_text}<|tool_list_end|>"


class ToolUtils:
    """Base class of the tool formats (LLaMA-Factory's ToolUtils without the extractors)."""


class DefaultToolUtils(ToolUtils):
    r"""Default tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        tool_names = []
        for tool in tools:
            tool = tool.get("function", "") if tool.get("type") == "function" else tool
            param_text = ""
            for name, param in tool["parameters"]["properties"].items():
                required, enum, items = "", "", ""
                if name in tool["parameters"].get("required", []):
                    required = ", required"

                if param.get("enum", None):
                    enum = ", should be one of [{}]".format(", ".join(param["enum"]))

                if param.get("items", None):
                    items = ", where each item should be {}".format(param["items"].get("type", ""))

                param_text += "  - {name} ({type}{required}): {desc}{enum}{items}\n".format(
                    name=name,
                    type=param.get("type", ""),
                    required=required,
                    desc=param.get("description", ""),
                    enum=enum,
                    items=items,
                )

            tool_text += "> Tool Name: {name}\nTool Description: {desc}\nTool Args:\n{args}\n".format(
                name=tool["name"], desc=tool.get("description", ""), args=param_text
            )
            tool_names.append(tool["name"])

        return DEFAULT_TOOL_PROMPT.format(tool_text=tool_text, tool_names=", ".join(tool_names))

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        return "\n".join([f"Action: {name}\nAction Input: {arguments}" for name, arguments in functions])

class Gemma4ToolUtils(ToolUtils):
    r"""Gemma-4 tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        def _format_parameters(properties: dict[str, Any]) -> str:
            parts: list[str] = []
            for name, schema in properties.items():
                item_parts: list[str] = []
                if schema.get("description"):
                    item_parts.append(f'description:<|"|>{schema["description"]}<|"|>')
                if schema.get("type"):
                    item_parts.append(f'type:<|"|>{str(schema["type"]).upper()}<|"|>')
                parts.append(f"{name}:{{{','.join(item_parts)}}}")

            return ",".join(parts)

        declarations: list[str] = []
        for tool in tools:
            function_data = tool.get("function", tool) if tool.get("type") == "function" else tool
            declaration = (
                f"declaration:{function_data['name']}"
                + "{"
                + f'description:<|"|>{function_data.get("description", "")}<|"|>'
            )

            params = function_data.get("parameters")
            if params:
                param_parts: list[str] = []
                if params.get("properties"):
                    param_parts.append(f"properties:{{{_format_parameters(params['properties'])}}}")

                if params.get("required"):
                    required_text = ",".join(f'<|"|>{item}<|"|>' for item in params["required"])
                    param_parts.append(f"required:[{required_text}]")

                if params.get("type"):
                    param_parts.append(f'type:<|"|>{str(params["type"]).upper()}<|"|>')

                declaration += f",parameters:{{{','.join(param_parts)}}}"

            response_declaration = function_data.get("response")
            if response_declaration:
                response_parts: list[str] = []
                if response_declaration.get("description"):
                    response_parts.append(f'description:<|"|>{response_declaration["description"]}<|"|>')

                response_type = str(response_declaration.get("type", "")).upper()

                if response_type == "OBJECT":
                    response_parts.append(f'type:<|"|>{response_type}<|"|>')

                declaration += f",response:{{{','.join(response_parts)}}}"

            declarations.append(declaration + "}")

        return "\n".join(declarations)

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        def _format_argument(argument: Any, escape_keys: bool = True) -> str:
            if isinstance(argument, str):
                return f'<|"|>{argument}<|"|>'

            if isinstance(argument, bool):
                return "true" if argument else "false"

            if isinstance(argument, dict):
                items: list[str] = []
                for key in sorted(argument.keys()):
                    formatted_key = f'<|"|>{key}<|"|>' if escape_keys else str(key)
                    formatted_value = _format_argument(argument[key], escape_keys=escape_keys)
                    items.append(f"{formatted_key}:{formatted_value}")
                return "{" + ",".join(items) + "}"

            if isinstance(argument, (list, tuple)):
                return "[" + ",".join(_format_argument(item, escape_keys=escape_keys) for item in argument) + "]"

            if argument is None:
                return "null"

            return str(argument)

        function_texts: list[str] = []
        for function in functions:
            name = function.name
            raw_arguments = function.arguments

            try:
                parsed_arguments = json.loads(raw_arguments)
            except (TypeError, json.JSONDecodeError):
                parsed_arguments = raw_arguments

            call_text = f"<|tool_call>call:{name}" + "{"
            if isinstance(parsed_arguments, dict):
                args_text = []
                for key in sorted(parsed_arguments.keys()):
                    value_text = _format_argument(parsed_arguments[key], escape_keys=False)
                    args_text.append(f"{key}:{value_text}")

                call_text += ",".join(args_text)
            elif isinstance(parsed_arguments, str):
                call_text += parsed_arguments
            else:
                call_text += _format_argument(parsed_arguments, escape_keys=False)

            call_text += "}<tool_call|>"
            function_texts.append(call_text)

        return "".join(function_texts)


class GLM4ToolUtils(ToolUtils):
    r"""GLM-4 tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        for tool in tools:
            tool = tool.get("function", "") if tool.get("type") == "function" else tool
            tool_text += "\n\n## {name}\n\n{body}\n在调用上述函数时，请使用 Json 格式表示调用的参数。".format(
                name=tool["name"], body=json.dumps(tool, indent=4, ensure_ascii=False)
            )

        return GLM4_TOOL_PROMPT.format(tool_text=tool_text)

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        if len(functions) > 1:
            raise ValueError("GLM-4 does not support parallel functions.")

        return f"{functions[0].name}\n{functions[0].arguments}"

class Llama3ToolUtils(ToolUtils):
    r"""Llama 3.x tool using template with `tools_in_user_message=False`.

    Reference: https://www.llama.com/docs/model-cards-and-prompt-formats/llama3_1/#json-based-tool-calling
    """

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        date = TODAY
        tool_text = ""
        for tool in tools:
            wrapped_tool = tool if tool.get("type") == "function" else {"type": "function", "function": tool}
            tool_text += json.dumps(wrapped_tool, indent=4, ensure_ascii=False) + "\n\n"

        return LLAMA3_TOOL_PROMPT.format(date=date, tool_text=tool_text)

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        function_objects = [{"name": name, "parameters": json.loads(arguments)} for name, arguments in functions]
        return json.dumps(function_objects[0] if len(function_objects) == 1 else function_objects, ensure_ascii=False)

class MiniMaxM1ToolUtils(ToolUtils):
    r"""MiniMax-M1 tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        for tool in tools:
            tool = tool.get("function", "") if tool.get("type") == "function" else tool
            tool_text += json.dumps(tool, ensure_ascii=False) + "\n"

        return MINIMAX_M1_TOOL_PROMPT.format(tool_text=tool_text)

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        function_texts = []
        for func in functions:
            name, arguments = func.name, json.loads(func.arguments)
            function_texts.append(json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False))

        return "<tool_calls>\n" + "\n".join(function_texts) + "\n</tool_calls>"

class MiniMaxM2ToolUtils(ToolUtils):
    r"""MiniMax-M2 tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        for tool in tools:
            tool = tool.get("function", "") if tool.get("type") == "function" else tool
            tool_text += "<tool>" + json.dumps(tool, ensure_ascii=False) + "</tool>\n"

        return MINIMAX_M2_TOOL_PROMPT.format(tool_text=tool_text)

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        function_texts = []
        for func in functions:
            name, arguments = func.name, json.loads(func.arguments)
            prompt = f'<invoke name="{name}">'
            for key, value in arguments.items():
                prompt += f'\n<parameter name="{key}">'
                if not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False)
                prompt += value + "</parameter>"
            prompt += "\n</invoke>"
            function_texts.append(prompt)

        return "\n".join(function_texts)

class MistralToolUtils(ToolUtils):
    r"""Mistral v0.3 tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        wrapped_tools = []
        for tool in tools:
            wrapped_tools.append(tool if tool.get("type") == "function" else {"type": "function", "function": tool})

        return "[AVAILABLE_TOOLS] " + json.dumps(wrapped_tools, ensure_ascii=False) + "[/AVAILABLE_TOOLS]"

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        return json.dumps(
            [{"name": name, "arguments": json.loads(arguments)} for name, arguments in functions], ensure_ascii=False
        )

class QwenToolUtils(ToolUtils):
    r"""Qwen 2.5 tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        for tool in tools:
            wrapped_tool = tool if tool.get("type") == "function" else {"type": "function", "function": tool}
            tool_text += "\n" + json.dumps(wrapped_tool, ensure_ascii=False)

        return QWEN_TOOL_PROMPT.format(tool_text=tool_text)

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        function_texts = [
            json.dumps({"name": name, "arguments": json.loads(arguments)}, ensure_ascii=False)
            for name, arguments in functions
        ]
        return "\n".join([f"<tool_call>\n{text}\n</tool_call>" for text in function_texts])

class Qwen35ToolUtils(ToolUtils):
    r"""Qwen 3.5 tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        for tool in tools:
            tool = tool.get("function", tool) if tool.get("type") == "function" else tool
            tool_text += "\n" + json.dumps(tool, ensure_ascii=False)

        return QWEN35_TOOL_PROMPT.format(tool_text=tool_text)

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        function_texts = []
        for func in functions:
            name, arguments = func.name, json.loads(func.arguments)
            prompt = f"<tool_call>\n<function={name}>"
            for key, value in arguments.items():
                prompt += f"\n<parameter={key}>"
                if not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False)
                prompt += f"\n{value}\n</parameter>"
            prompt += "\n</function>\n</tool_call>"
            function_texts.append(prompt)

        return "\n".join(function_texts)

class GLM4MOEToolUtils(QwenToolUtils):
    r"""GLM-4-MOE tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        for tool in tools:
            wrapped_tool = tool if tool.get("type") == "function" else {"type": "function", "function": tool}
            tool_text += "\n" + json.dumps(wrapped_tool, ensure_ascii=False)

        return GLM4_MOE_TOOL_PROMPT.format(tool_text=tool_text)

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        function_json = [
            {"func_name": name, "func_key_values": json.loads(arguments)} for name, arguments in functions
        ]
        function_texts = []
        for func in function_json:
            prompt = "\n<tool_call>" + func["func_name"]
            for key, value in func["func_key_values"].items():
                prompt += "\n<arg_key>" + key + "</arg_key>"
                if not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False)
                prompt += "\n<arg_value>" + value + "</arg_value>"
            function_texts.append(prompt)

        return "\n".join(function_texts)


class SeedToolUtils(ToolUtils):
    r"""Seed tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        return SEED_TOOL_PROMPT.format(tool_text="\n" + json.dumps(tools, ensure_ascii=False))

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        function_json = [
            {"func_name": name, "func_key_values": json.loads(arguments)} for name, arguments in functions
        ]
        function_texts = []
        for func in function_json:
            prompt = "\n<seed:tool_call>\n<function=" + func["func_name"]
            for key, value in func["func_key_values"].items():
                prompt += "\n<parameter=" + key + ">"
                if not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False)
                prompt += value + "</parameter>"
            prompt += "\n</function>\n</seed:tool_call>"
            function_texts.append(prompt)

        return "\n".join(function_texts)

class LingToolUtils(QwenToolUtils):
    r"""Ling v2 tool using template."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_text = ""
        for tool in tools:
            wrapped_tool = tool if tool.get("type") == "function" else {"type": "function", "function": tool}
            tool_text += "\n" + json.dumps(wrapped_tool, ensure_ascii=False)

        return LING_TOOL_PROMPT.format(tool_text=tool_text) + "\n" + "detailed thinking off"


class LFM2ToolUtils(ToolUtils):
    r"""LFM2.5 tool using template with Pythonic function call syntax."""

    @override
    @staticmethod
    def tool_formatter(tools: list[dict[str, Any]]) -> str:
        tool_list = []
        for tool in tools:
            tool = tool.get("function", tool) if tool.get("type") == "function" else tool
            tool_list.append(tool)

        return LFM2_TOOL_PROMPT.format(tool_text=json.dumps(tool_list, ensure_ascii=False))

    @override
    @staticmethod
    def function_formatter(functions: list["FunctionCall"]) -> str:
        calls = []
        for name, args_json in functions:
            args = json.loads(args_json)
            kwargs_parts = []
            for key, value in args.items():
                if isinstance(value, str):
                    kwargs_parts.append(f'{key}="{value}"')
                else:
                    kwargs_parts.append(f"{key}={json.dumps(value, ensure_ascii=False)}")

            calls.append(f"{name}({', '.join(kwargs_parts)})")

        return f"<|tool_call_start|>[{', '.join(calls)}]<|tool_call_end|>"

TOOLS = {
    "default": DefaultToolUtils(),
    "gemma4": Gemma4ToolUtils(),
    "glm4": GLM4ToolUtils(),
    "llama3": Llama3ToolUtils(),
    "lfm2": LFM2ToolUtils(),
    "minimax1": MiniMaxM1ToolUtils(),
    "minimax2": MiniMaxM2ToolUtils(),
    "mistral": MistralToolUtils(),
    "qwen": QwenToolUtils(),
    "qwen3_5": Qwen35ToolUtils(),
    "glm4_moe": GLM4MOEToolUtils(),
    "seed_oss": SeedToolUtils(),
    "ling": LingToolUtils(),
}




def get_tool_utils(name: str) -> "ToolUtils":
    tool_utils = TOOLS.get(name, None)
    if tool_utils is None:
        raise ValueError(f"Tool utils `{name}` not found.")

    return tool_utils


# ------------------------------------------------------------------ data/formatter.py

class StringFormatter:
    def __init__(self, slots, tool_format=None):
        self.slots = slots
        self.tool_format = tool_format

    def apply(self, **kwargs):
        elements = []
        for slot in self.slots:
            if isinstance(slot, str):
                for name, value in kwargs.items():
                    if not isinstance(value, str):
                        raise RuntimeError(f"Expected a string, got {value}")

                    slot = slot.replace("{{" + name + "}}", value, 1)
                elements.append(slot)
            elif isinstance(slot, (dict, set)):
                elements.append(slot)
            else:
                raise RuntimeError(f"Input must be string, set[str] or dict[str, str], got {type(slot)}.")

        return elements


class EmptyFormatter(StringFormatter):
    def __init__(self, slots=None):
        super().__init__(slots or [])

    def apply(self, **kwargs):
        return self.slots


class FunctionFormatter(StringFormatter):
    def __init__(self, slots, tool_format):
        super().__init__(slots, tool_format)
        self.tool_utils = get_tool_utils(self.tool_format)

    def apply(self, **kwargs):
        content: str = kwargs.pop("content")
        thought_words = kwargs.pop("thought_words", None)
        tool_call_words = kwargs.pop("tool_call_words", None)

        def _parse_functions(json_content: str) -> list["FunctionCall"]:
            try:
                tool_calls = json.loads(json_content)
                if not isinstance(tool_calls, list):  # parallel function call
                    tool_calls = [tool_calls]

                return [FunctionCall(tc["name"], json.dumps(tc["arguments"], ensure_ascii=False)) for tc in tool_calls]
            except json.JSONDecodeError:
                raise RuntimeError(f"Invalid JSON format in function message: {str([content])}.")

        tool_call_match = None
        if tool_call_words and len(tool_call_words) == 2:
            tool_call_regex = re.compile(
                rf"{re.escape(tool_call_words[0])}(.*?){re.escape(tool_call_words[1])}", re.DOTALL
            )
            tool_call_match = re.search(tool_call_regex, content)

        if tool_call_match is None:
            thought_match = None
            if thought_words and len(thought_words) == 2:
                regex = re.compile(rf"{re.escape(thought_words[0])}(.*?){re.escape(thought_words[1])}", re.DOTALL)
                thought_match = re.search(regex, content)

            if thought_match:
                json_part = content.replace(thought_match.group(0), "")
            else:
                json_part = content

            functions = _parse_functions(json_part)
            function_str = self.tool_utils.function_formatter(functions)
            if thought_match:
                function_str = thought_match.group(0) + function_str
        else:
            thought_content = content.replace(tool_call_match.group(0), "")
            functions = _parse_functions(tool_call_match.group(1))
            function_str = self.tool_utils.function_formatter(functions)
            function_str = thought_content + function_str

        return super().apply(content=function_str)


class ToolFormatter:
    def __init__(self, tool_format):
        self.tool_format = tool_format
        self.tool_utils = get_tool_utils(self.tool_format)

    def apply(self, **kwargs):
        content = kwargs.pop("content")
        try:
            tools = json.loads(content)
            return [self.tool_utils.tool_formatter(tools) if len(tools) != 0 else ""]
        except json.JSONDecodeError:
            raise RuntimeError(f"Invalid JSON format in tool description: {str([content])}.")  # flat string


# ------------------------------------------------------------------ the tests' byte-level tokenizer

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
            "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|tool|>", "<|/tool|>"]


class ByteTokenizer:
    """Every UTF-8 byte is its own id; special tokens (matched leftmost, longest first) are 256.."""

    def __init__(self):
        self.vocab = {s: 256 + i for i, s in enumerate(SPECIALS)}
        self.bos_token, self.eos_token = "<s>", "</s>"
        self.pattern = re.compile("|".join(re.escape(s) for s in sorted(SPECIALS, key=len, reverse=True)))

    @property
    def bos_token_id(self):
        return self.vocab[self.bos_token]

    @property
    def eos_token_id(self):
        return self.vocab[self.eos_token]

    def convert_tokens_to_ids(self, token):
        return self.vocab[token]

    def encode(self, text, add_special_tokens=False):
        ids, at = [], 0
        for m in self.pattern.finditer(text):
            ids += list(text[at:m.start()].encode("utf-8"))
            ids.append(self.vocab[m.group(0)])
            at = m.end()
        return ids + list(text[at:].encode("utf-8"))


# ------------------------------------------------------------------ data/template.py

class Template:
    def __init__(self, format_user, format_assistant, format_system, format_function, format_observation,
                 format_tools, format_prefix, default_system, stop_words, thought_words, tool_call_words,
                 efficient_eos, replace_eos, enable_thinking=True, preserve_thinking=False):
        self.format_user, self.format_assistant, self.format_system = format_user, format_assistant, format_system
        self.format_function, self.format_observation = format_function, format_observation
        self.format_tools, self.format_prefix = format_tools, format_prefix
        self.default_system, self.stop_words = default_system, stop_words
        self.thought_words, self.tool_call_words = thought_words, tool_call_words
        self.efficient_eos, self.replace_eos = efficient_eos, replace_eos
        self.enable_thinking, self.preserve_thinking = enable_thinking, preserve_thinking

    def encode_oneturn(self, tokenizer, messages, system=None, tools=None):
        encoded_messages = self._encode(tokenizer, messages, system, tools)
        prompt_ids = []
        for encoded_ids in encoded_messages[:-1]:
            prompt_ids += encoded_ids

        response_ids = encoded_messages[-1]
        return prompt_ids, response_ids

    def encode_multiturn(self, tokenizer, messages, system=None, tools=None, discarding_history_cot=False):
        encoded_messages = self._encode(tokenizer, messages, system, tools)
        return [(encoded_messages[i], encoded_messages[i + 1]) for i in range(0, len(encoded_messages), 2)]

    def add_thought(self, content: str = "") -> str:
        return f"{self.thought_words[0]}{self.thought_words[1]}" + content

    def remove_thought(self, content: str) -> str:
        pattern = re.compile(f"{re.escape(self.thought_words[0])}(.*?){re.escape(self.thought_words[1])}", re.DOTALL)
        return re.sub(pattern, "", content).lstrip("\n")

    def get_thought_word_ids(self, tokenizer):
        return tokenizer.encode(self.add_thought(), add_special_tokens=False)

    def _convert_elements_to_ids(self, tokenizer, elements):
        token_ids = []
        for elem in elements:
            if isinstance(elem, str):
                if len(elem) != 0:
                    token_ids += tokenizer.encode(elem, add_special_tokens=False)
            elif isinstance(elem, dict):
                token_ids += [tokenizer.convert_tokens_to_ids(elem.get("token"))]
            elif isinstance(elem, set):
                if "bos_token" in elem and tokenizer.bos_token_id is not None:
                    token_ids += [tokenizer.bos_token_id]
                elif "eos_token" in elem and tokenizer.eos_token_id is not None:
                    token_ids += [tokenizer.eos_token_id]
            else:
                raise ValueError(f"Input must be string, set[str] or dict[str, str], got {type(elem)}")

        return token_ids

    def _encode(self, tokenizer, messages, system, tools):
        system = system or self.default_system
        encoded_messages = []
        for i, message in enumerate(messages):
            elements = []

            if i == 0:
                elements += self.format_prefix.apply()
                if system or tools:
                    tool_text = self.format_tools.apply(content=tools)[0] if tools else ""
                    elements += self.format_system.apply(content=(system + tool_text))

            if message["role"] == "user":
                elements += self.format_user.apply(content=message["content"], idx=str(i // 2))
            elif message["role"] == "assistant":
                elements += self.format_assistant.apply(content=message["content"])
            elif message["role"] == "observation":
                elements += self.format_observation.apply(content=message["content"])
            elif message["role"] == "function":
                elements += self.format_function.apply(
                    content=message["content"], thought_words=self.thought_words, tool_call_words=self.tool_call_words
                )
            else:
                raise NotImplementedError("Unexpected role: {}".format(message["role"]))

            encoded_messages.append(self._convert_elements_to_ids(tokenizer, elements))

        return encoded_messages


class Llama2Template(Template):
    def _encode(self, tokenizer, messages, system, tools):
        system = system or self.default_system
        encoded_messages = []
        for i, message in enumerate(messages):
            elements = []

            system_text = ""
            if i == 0:
                elements += self.format_prefix.apply()
                if system or tools:
                    tool_text = self.format_tools.apply(content=tools)[0] if tools else ""
                    system_text = self.format_system.apply(content=(system + tool_text))[0]

            if message["role"] == "user":
                elements += self.format_user.apply(content=system_text + message["content"])
            elif message["role"] == "assistant":
                elements += self.format_assistant.apply(content=message["content"])
            elif message["role"] == "observation":
                elements += self.format_observation.apply(content=message["content"])
            elif message["role"] == "function":
                elements += self.format_function.apply(content=message["content"])
            else:
                raise NotImplementedError("Unexpected role: {}".format(message["role"]))

            encoded_messages.append(self._convert_elements_to_ids(tokenizer, elements))

        return encoded_messages


class ReasoningTemplate(Template):
    def encode_oneturn(self, tokenizer, messages, system=None, tools=None):
        messages = deepcopy(messages)
        if not self.preserve_thinking:
            for i in range(1, len(messages) - 2, 2):
                messages[i]["content"] = self.remove_thought(messages[i]["content"])

        if self.enable_thinking is False:  # remove all cot
            messages[-1]["content"] = self.remove_thought(messages[-1]["content"])

        prompt_ids, response_ids = super().encode_oneturn(tokenizer, messages, system, tools)
        if (
            self.thought_words[0].strip() not in messages[-1]["content"]
            and self.thought_words[1].strip() not in messages[-1]["content"]
        ):  # add empty cot
            if not self.enable_thinking:  # do not compute loss
                prompt_ids += self.get_thought_word_ids(tokenizer)
            else:  # do compute loss
                response_ids = self.get_thought_word_ids(tokenizer) + response_ids

        return prompt_ids, response_ids

    def encode_multiturn(self, tokenizer, messages, system=None, tools=None, discarding_history_cot=False):
        messages = deepcopy(messages)
        if self.enable_thinking is False:  # remove all cot
            for i in range(1, len(messages), 2):
                messages[i]["content"] = self.remove_thought(messages[i]["content"])

        if discarding_history_cot:
            for i in range(1, len(messages) - 2, 2):  # preserve the last cot
                messages[i]["content"] = self.remove_thought(messages[i]["content"])

        encoded_messages = self._encode(tokenizer, messages, system, tools)
        if discarding_history_cot:
            turn_indices = [len(messages) - 2]
        else:
            turn_indices = range(0, len(messages), 2)

        for i in turn_indices:
            if (
                self.thought_words[0].strip() not in messages[i + 1]["content"]
                and self.thought_words[1].strip() not in messages[i + 1]["content"]
            ):  # add empty cot
                if not self.enable_thinking:  # do not compute loss
                    encoded_messages[i] += self.get_thought_word_ids(tokenizer)
                else:  # do compute loss
                    encoded_messages[i + 1] = self.get_thought_word_ids(tokenizer) + encoded_messages[i + 1]

        return [(encoded_messages[i], encoded_messages[i + 1]) for i in range(0, len(encoded_messages), 2)]


TEMPLATES = {}


def register_template(name, format_user=None, format_assistant=None, format_system=None, format_function=None,
                      format_observation=None, format_tools=None, format_prefix=None, default_system="",
                      stop_words=None, thought_words=None, tool_call_words=None, efficient_eos=False,
                      replace_eos=False, replace_jinja_template=False, template_class=Template):
    default_slots = ["{{content}}"] if efficient_eos else ["{{content}}", {"eos_token"}]
    default_user_formatter = StringFormatter(slots=["{{content}}"])
    default_assistant_formatter = StringFormatter(slots=default_slots)
    if format_assistant is not None:
        default_function_formatter = FunctionFormatter(slots=format_assistant.slots, tool_format="default")
    else:
        default_function_formatter = FunctionFormatter(slots=default_slots, tool_format="default")

    default_tool_formatter = ToolFormatter(tool_format="default")
    default_prefix_formatter = EmptyFormatter()
    TEMPLATES[name] = (template_class, dict(
        format_user=format_user or default_user_formatter,
        format_assistant=format_assistant or default_assistant_formatter,
        format_system=format_system or default_user_formatter,
        format_function=format_function or default_function_formatter,
        format_observation=format_observation or format_user or default_user_formatter,
        format_tools=format_tools or default_tool_formatter,
        format_prefix=format_prefix or default_prefix_formatter,
        default_system=default_system,
        stop_words=stop_words or [],
        thought_words=thought_words or ("<think>\n", "\n</think>\n\n"),
        tool_call_words=tool_call_words or ("<tool_call>", "</tool_call>"),
        efficient_eos=efficient_eos,
        replace_eos=replace_eos,
    ))


def get_template_and_fix_tokenizer(name, tool_format=None):
    """A fresh template (so an override changes no other case) and the tokenizer it fixes."""
    template_class, kwargs = TEMPLATES[name]
    template = template_class(**kwargs)
    if tool_format is not None:
        default_slots = ["{{content}}"] if template.efficient_eos else ["{{content}}", {"eos_token"}]
        template.format_function = FunctionFormatter(slots=default_slots, tool_format=tool_format)
        template.format_tools = ToolFormatter(tool_format=tool_format)

    tokenizer = ByteTokenizer()
    if template.replace_eos:  # fix_special_tokens: the stop words are tokens of the test tokenizer already
        tokenizer.eos_token = template.stop_words[0]
    return template, tokenizer


# The templates spark-sft has, registered as LLaMA-Factory registers them.
register_template(
    name="alpaca",
    format_user=StringFormatter(slots=["### Instruction:\n{{content}}\n\n### Response:\n"]),
    format_assistant=StringFormatter(slots=["{{content}}", {"eos_token"}, "\n\n"]),
    default_system=(
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    ),
    replace_jinja_template=True,
)

register_template(
    name="chatml",
    format_user=StringFormatter(slots=["<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"]),
    format_assistant=StringFormatter(slots=["{{content}}<|im_end|>\n"]),
    format_system=StringFormatter(slots=["<|im_start|>system\n{{content}}<|im_end|>\n"]),
    format_observation=StringFormatter(slots=["<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n"]),
    stop_words=["<|im_end|>", "<|im_start|>"],
    replace_eos=True,
    replace_jinja_template=True,
)

register_template(
    name="default",
    format_user=StringFormatter(slots=["Human: {{content}}", {"eos_token"}, "\nAssistant:"]),
    format_assistant=StringFormatter(slots=["{{content}}", {"eos_token"}, "\n"]),
    format_system=StringFormatter(slots=["System: {{content}}", {"eos_token"}, "\n"]),
    replace_jinja_template=True,
)

register_template(
    name="empty",
    format_assistant=StringFormatter(slots=["{{content}}"]),
)

register_template(
    name="phi4_mini",
    format_user=StringFormatter(slots=["<|user|>{{content}}<|end|><|assistant|>"]),
    format_assistant=StringFormatter(slots=["{{content}}<|end|>"]),
    format_system=StringFormatter(slots=["<|system|>{{content}}<|end|>"]),
    format_tools=StringFormatter(slots=["<|tool|>{{content}}<|/tool|>"]),
    stop_words=["<|end|>"],
    replace_eos=True,
)

register_template(
    name="llama3",
    format_user=StringFormatter(
        slots=[
            (
                "<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"
            )
        ]
    ),
    format_assistant=StringFormatter(slots=["{{content}}<|eot_id|>"]),
    format_system=StringFormatter(slots=["<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>"]),
    format_function=FunctionFormatter(slots=["{{content}}<|eot_id|>"], tool_format="llama3"),
    format_observation=StringFormatter(
        slots=[
            (
                "<|start_header_id|>ipython<|end_header_id|>\n\n{{content}}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"
            )
        ]
    ),
    format_tools=ToolFormatter(tool_format="llama3"),
    format_prefix=EmptyFormatter(slots=[{"bos_token"}]),
    stop_words=["<|eot_id|>", "<|eom_id|>"],
    replace_eos=True,
)

register_template(
    name="mistral",
    format_user=StringFormatter(slots=["[INST] {{content}}[/INST]"]),
    format_assistant=StringFormatter(slots=[" {{content}}", {"eos_token"}]),
    format_system=StringFormatter(slots=["{{content}}\n\n"]),
    format_function=FunctionFormatter(slots=["[TOOL_CALLS] {{content}}", {"eos_token"}], tool_format="mistral"),
    format_observation=StringFormatter(slots=["""[TOOL_RESULTS] {"content": {{content}}}[/TOOL_RESULTS]"""]),
    format_tools=ToolFormatter(tool_format="mistral"),
    format_prefix=EmptyFormatter(slots=[{"bos_token"}]),
    template_class=Llama2Template,
)

register_template(
    name="qwen",
    format_user=StringFormatter(slots=["<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"]),
    format_assistant=StringFormatter(slots=["{{content}}<|im_end|>\n"]),
    format_system=StringFormatter(slots=["<|im_start|>system\n{{content}}<|im_end|>\n"]),
    format_function=FunctionFormatter(slots=["{{content}}<|im_end|>\n"], tool_format="qwen"),
    format_observation=StringFormatter(
        slots=["<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"]
    ),
    format_tools=ToolFormatter(tool_format="qwen"),
    default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    stop_words=["<|im_end|>"],
    replace_eos=True,
)

register_template(
    name="qwen3",
    format_user=StringFormatter(slots=["<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"]),
    format_assistant=StringFormatter(slots=["{{content}}<|im_end|>\n"]),
    format_system=StringFormatter(slots=["<|im_start|>system\n{{content}}<|im_end|>\n"]),
    format_function=FunctionFormatter(slots=["{{content}}<|im_end|>\n"], tool_format="qwen"),
    format_observation=StringFormatter(
        slots=["<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"]
    ),
    format_tools=ToolFormatter(tool_format="qwen"),
    stop_words=["<|im_end|>"],
    replace_eos=True,
    template_class=ReasoningTemplate,
)

register_template(
    name="qwen3_nothink",
    format_user=StringFormatter(slots=["<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"]),
    format_assistant=StringFormatter(slots=["{{content}}<|im_end|>\n"]),
    format_system=StringFormatter(slots=["<|im_start|>system\n{{content}}<|im_end|>\n"]),
    format_function=FunctionFormatter(slots=["{{content}}<|im_end|>\n"], tool_format="qwen"),
    format_observation=StringFormatter(
        slots=["<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"]
    ),
    format_tools=ToolFormatter(tool_format="qwen"),
    stop_words=["<|im_end|>"],
    replace_eos=True,
)


# ------------------------------------------------------------------ data/converter.py (sharegpt)

def convert_sharegpt(example, attr):
    tag_mapping = {
        attr["user_tag"]: "user",
        attr["assistant_tag"]: "assistant",
        attr["observation_tag"]: "observation",
        attr["function_tag"]: "function",
        attr["system_tag"]: "system",
    }
    odd_tags = (attr["user_tag"], attr["observation_tag"])
    even_tags = (attr["assistant_tag"], attr["function_tag"])
    accept_tags = (odd_tags, even_tags)
    messages = example[attr["messages"]]
    if attr["system_tag"] and len(messages) != 0 and messages[0][attr["role_tag"]] == attr["system_tag"]:
        system = messages[0][attr["content_tag"]]
        messages = messages[1:]
    else:
        system = example[attr["system"]] if attr["system"] else ""

    aligned_messages = []
    broken_data = False
    for turn_idx, message in enumerate(messages):
        if message[attr["role_tag"]] not in accept_tags[turn_idx % 2]:
            broken_data = True
            break

        aligned_messages.append(
            {"role": tag_mapping[message[attr["role_tag"]]], "content": message[attr["content_tag"]]}
        )

    if len(aligned_messages) % 2 != 0:
        broken_data = True

    if broken_data:
        prompt, response = [], []
    else:
        prompt = aligned_messages[:-1]
        response = aligned_messages[-1:]

    return {"_prompt": prompt, "_response": response, "_system": system,
            "_tools": example[attr["tools"]] if attr["tools"] else ""}


def convert_openai(example, attr):
    tag_mapping = {
        attr["user_tag"]: "user",
        attr["assistant_tag"]: "assistant",
        attr["observation_tag"]: "observation",
        attr["function_tag"]: "function",
        attr["system_tag"]: "system",
    }

    messages = example[attr["messages"]]
    if attr["system_tag"] and len(messages) != 0 and messages[0][attr["role_tag"]] == attr["system_tag"]:
        system = messages[0][attr["content_tag"]]
        messages = messages[1:]
    else:
        system = example.get(attr["system"], "") if attr["system"] else ""

    aligned_messages = []
    tool_responses = []
    broken_data = False
    for turn_idx, message in enumerate(messages):
        role = message[attr["role_tag"]]
        content = message[attr["content_tag"]]

        if role in [attr["assistant_tag"], attr["function_tag"]]:
            if tool_calls := message.get("tool_calls"):
                tool_calls_list = [tool["function"] for tool in tool_calls]
                content = json.dumps(tool_calls_list, ensure_ascii=False)
                role = attr["function_tag"]

        if role == attr["observation_tag"]:
            tool_responses.append(content)
            continue
        elif len(tool_responses) > 0:
            _content = "\n</tool_response>\n<tool_response>\n".join(tool_responses)
            aligned_messages.append({"role": "observation", "content": _content})
            tool_responses = []

        aligned_messages.append({"role": tag_mapping[role], "content": content})

    odd_tags = ("user", "observation")
    even_tags = ("assistant", "function")
    accept_tags = (odd_tags, even_tags)
    for turn_idx, message in enumerate(aligned_messages):
        if message["role"] not in accept_tags[turn_idx % 2]:
            broken_data = True
            break

    if len(aligned_messages) % 2 != 0:
        broken_data = True

    if broken_data:
        prompt, response = [], []
    else:
        prompt = aligned_messages[:-1]
        response = aligned_messages[-1:]

    tools = example.get(attr["tools"], "") if attr["tools"] else ""
    if isinstance(tools, dict) or isinstance(tools, list):
        tools = json.dumps(tools, ensure_ascii=False)

    short_system_prompt = "detailed thinking off"
    if not system:
        if not tools:
            system = short_system_prompt
        else:
            pass
    else:
        if not tools:
            if "detailed thinking on" in system or "detailed thinking off" in system:
                pass
            else:
                system += "\n" + short_system_prompt
        else:
            system += "\n"

    return {"_prompt": prompt, "_response": response, "_system": system, "_tools": tools}


def dataset_attr(entry):
    """parser.py's DatasetAttr defaults joined with a dataset_info.json entry (sharegpt)."""
    attr = {"system": None, "tools": None, "messages": "conversations", "role_tag": "from", "content_tag": "value",
            "user_tag": "human", "assistant_tag": "gpt", "observation_tag": "observation",
            "function_tag": "function_call", "system_tag": "system"}
    if "columns" in entry:
        for k in ["messages", "system", "tools"]:
            attr[k] = entry["columns"].get(k)
    if "tags" in entry:
        for k in ["role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
                  "system_tag"]:
            attr[k] = entry["tags"].get(k)
    return attr


# ------------------------------------------------------------------ data/processor

def infer_seqlen(source_len, target_len, cutoff_len):
    if target_len * 2 < cutoff_len:  # truncate source
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:  # truncate target
        max_target_len = cutoff_len - source_len
    else:  # truncate both
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))

    new_target_len = min(max_target_len, target_len)
    max_source_len = max(cutoff_len - new_target_len, 0)
    new_source_len = min(max_source_len, source_len)
    return new_source_len, new_target_len


def supervised(template, tokenizer, ex, cutoff_len=CUTOFF_LEN):
    """SupervisedDatasetProcessor._encode_data_example (train_on_prompt and mask_history off)."""
    messages = ex["_prompt"] + ex["_response"]
    input_ids, labels = [], []
    encoded_pairs = template.encode_multiturn(tokenizer, messages, ex["_system"], ex["_tools"], False)
    total_length = 1 if template.efficient_eos else 0
    for turn_idx, (source_ids, target_ids) in enumerate(encoded_pairs):
        if total_length >= cutoff_len:
            break

        source_len, target_len = infer_seqlen(len(source_ids), len(target_ids), cutoff_len - total_length)
        source_ids = source_ids[:source_len]
        target_ids = target_ids[:target_len]
        total_length += source_len + target_len
        if template.efficient_eos and turn_idx != 0:
            source_label = [tokenizer.eos_token_id] + [IGNORE_INDEX] * (source_len - 1)
        else:
            source_label = [IGNORE_INDEX] * source_len

        input_ids += source_ids + target_ids
        labels += source_label + target_ids

    if template.efficient_eos:
        input_ids += [tokenizer.eos_token_id]
        labels += [tokenizer.eos_token_id]

    return input_ids, labels, encoded_pairs


def unsupervised(template, tokenizer, ex, cutoff_len=CUTOFF_LEN):
    """UnsupervisedDatasetProcessor._encode_data_example: the prompt to generate from and the label."""
    messages = ex["_prompt"] + ex["_response"]
    input_ids, labels = template.encode_oneturn(tokenizer, messages, ex["_system"], ex["_tools"])
    if template.efficient_eos:
        labels += [tokenizer.eos_token_id]

    source_len, target_len = infer_seqlen(len(input_ids), len(labels), cutoff_len)
    return input_ids[:source_len], labels[:target_len]


# ------------------------------------------------------------------ fixtures

DATASETS = ["glaive_toolcall_en_demo", "glaive_toolcall_zh_demo", "openai_tools_demo"]
OPENAI_INFO = {"file_name": "openai_tools_demo.json", "formatting": "openai",
               "columns": {"messages": "messages", "tools": "tools"},
               "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                        "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system"}}
OPENAI_SYSTEMS = [None, "You are a helpful assistant.", "Reason first. detailed thinking on", ""]
FORMATS = list(TOOLS)
TEMPLATE_NAMES = ["default", "empty", "alpaca", "chatml", "qwen", "qwen3", "qwen3_nothink", "llama3", "mistral",
                  "phi4_mini"]
NUM_FIRST_ROWS = 12
FULL_TEMPLATES = {"glaive_toolcall_en_demo": ["qwen3", "llama3", "mistral"],
                  "glaive_toolcall_zh_demo": ["qwen3", "llama3", "mistral"], "openai_tools_demo": ["qwen3"]}

# Tools and function-call messages beyond the demo sets: type-wrapped tools, a list type, enums,
# items, numbers Python writes its own way, thoughts and <tool_call> words, parallel calls.
EXTRA_TOOLS = [
    json.dumps([
        {"type": "function", "function": {"name": "get_weather", "description": "天气 lookup",
                                          "parameters": {"type": "object", "properties": {
                                              "city": {"type": "string", "description": "City name"},
                                              "unit": {"type": "string", "enum": ["c", "f"]},
                                              "days": {"type": ["integer", "null"], "default": 1.0},
                                              "tags": {"type": "array", "items": {"type": "string"}},
                                              "ratio": {"type": "number", "minimum": 1e-07, "maximum": 1e16}},
                                              "required": ["city"]}}},
        {"name": "noop", "description": "", "parameters": {"type": "object", "properties": {}}},
    ], ensure_ascii=False),
    "[]",
]
EXTRA_CALLS = [
    '<think>\nI should call it.\n</think>\n\n{"name": "f", "arguments": {"a": 1.5, "b": [true, null, "x"]}}',
    'Let me check.<tool_call>{"name": "f", "arguments": {"q": "天气", "n": 3}}</tool_call>',
    '[{"name": "a", "arguments": {"x": 1e-7, "y": 12345678901234567890}}, {"name": "b", "arguments": {}}]',
    '{"name": "g", "arguments": "{\\"raw\\": 1}"}',
    '{"name": "h", "arguments": {"nested": {"z": 1, "a": {"k": [1, 2.0, -0.0, 1E+3]}}, '
    '"s": "quote\\" back\\\\ nl\\n ctl\\u0001 tab\\t"}}',
]


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def ids_hash(input_ids, labels):
    return sha(",".join(map(str, input_ids)) + ";" + ",".join(map(str, labels)))


def or_none(f):
    """f(), or None where LLaMA-Factory raises (glm4's parallel calls, string arguments, ...)."""
    try:
        return f()
    except (ValueError, TypeError, AttributeError, KeyError, RuntimeError):
        return None


def function_text(fmt, content):
    formatter = FunctionFormatter(slots=["{{content}}"], tool_format=fmt)
    return formatter.apply(content=content, thought_words=("<think>\n", "\n</think>\n\n"),
                           tool_call_words=("<tool_call>", "</tool_call>"))[0]


def pick_rows(rows):
    """The first rows, and the first row showing each feature the formatters treat specially."""
    picked = list(range(min(NUM_FIRST_ROWS, len(rows))))

    def first(pred):
        for i, r in enumerate(rows):
            if pred(r) and i not in picked:
                picked.append(i)
                return

    def params(r):
        tools = json.loads(r["tools"]) if r["tools"] else []
        return [p for t in tools for p in t["parameters"]["properties"].values()]

    def roles(r):
        return [m["from"] for m in r["conversations"]]

    first(lambda r: any(p.get("enum") for p in params(r)))
    first(lambda r: any(p.get("items") for p in params(r)))
    first(lambda r: any("description" not in p for p in params(r)))
    first(lambda r: r["tools"] and len(json.loads(r["tools"])) >= 2)
    first(lambda r: roles(r).count("function_call") >= 3)
    first(lambda r: "observation" in roles(r) and "function_call" not in roles(r))
    first(lambda r: any(m["from"] == "function_call" and re.search(r"\d\.\d", m["value"]) for m in r["conversations"]))
    return sorted(picked)


def to_openai(row, system):
    """A glaive row as openai messages: calls as an assistant's tool_calls, results as tool messages."""
    messages = [] if system is None else [{"role": "system", "content": system}]
    for m in row["conversations"]:
        if m["from"] == "function_call":
            call = {"type": "function", "function": json.loads(m["value"])}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        else:
            role = {"human": "user", "gpt": "assistant", "observation": "tool"}[m["from"]]
            messages.append({"role": role, "content": m["value"]})
    out = {"messages": messages}
    if row["tools"]:
        out["tools"] = json.loads(row["tools"])
    return out


def openai_rows(glaive_rows):
    rows = [to_openai(r, OPENAI_SYSTEMS[i % len(OPENAI_SYSTEMS)]) for i, r in enumerate(glaive_rows)]
    # two calls in one message, their results as two tool messages in a row
    rows.append({"messages": [
        {"role": "user", "content": "Weather in Paris and 北京?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "北京", "days": 2.0}}}]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "tool", "content": "{\"temp\": 18.5}"},
        {"role": "assistant", "content": "Paris 21, 北京 18.5."}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                    "parameters": {"type": "object", "properties": {
                                                        "city": {"type": "string"}, "days": {"type": "number"}},
                                                        "required": ["city"]}}}]})
    return rows


def render(elements_ids, tokenizer):
    inverse = {v: k for k, v in tokenizer.vocab.items()}
    out, pending = [], bytearray()
    for i in elements_ids:
        if i < 256:
            pending.append(i)
        else:
            out.append(pending.decode("utf-8")), pending.clear()
            out.append(inverse[i])
    out.append(pending.decode("utf-8"))
    return "".join(out)


def cases():
    yield from ((t, None) for t in TEMPLATE_NAMES)
    yield from (("qwen", f) for f in FORMATS)       # the tool_format key over a template's own format
    yield ("mistral", "qwen")                          # ... over a template that folds the system prompt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", help="LLaMA-Factory's data folder (dataset_info.json and the glaive demo sets)")
    ap.add_argument("--all-rows", action="store_true", help="every row of both sets, not a subset")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    info = json.load(open(os.path.join(args.data_dir, "dataset_info.json"), encoding="utf-8"))
    expected = {"today": TODAY, "cutoff_len": CUTOFF_LEN, "datasets": {}, "tool_text": {}, "function_text": {},
                "extra_tools": EXTRA_TOOLS, "extra_calls": EXTRA_CALLS, "supervised": [], "generation": [],
                "examples": []}
    converted = {}
    info["openai_tools_demo"] = OPENAI_INFO
    for name in DATASETS:
        if name == "openai_tools_demo":
            rows = openai_rows(json.load(open(os.path.join(args.out, info[DATASETS[0]]["file_name"]), encoding="utf-8"))[:8])
            picked = None
        else:
            rows = json.load(open(os.path.join(args.data_dir, info[name]["file_name"]), encoding="utf-8"))
            picked = list(range(len(rows))) if args.all_rows else pick_rows(rows)
            rows = [rows[i] for i in picked]
        with open(os.path.join(args.out, info[name]["file_name"]), "w", encoding="utf-8") as f:
            json.dump(rows, f, ensure_ascii=False, indent=2)
        expected["datasets"][name] = {"source_rows": picked, "num_rows": len(rows)}
        attr = dataset_attr(info[name])
        convert = convert_openai if info[name]["formatting"] == "openai" else convert_sharegpt
        converted[name] = [convert(r, attr) for r in rows]
        assert all(c["_prompt"] for c in converted[name]), "a demo row LLaMA-Factory drops"
    with open(os.path.join(args.out, "dataset_info.json"), "w", encoding="utf-8") as f:
        json.dump({n: info[n] for n in DATASETS}, f, ensure_ascii=False, indent=2)

    for fmt in FORMATS:
        expected["tool_text"][fmt] = {
            name: [sha(ToolFormatter(fmt).apply(content=c["_tools"])[0]) if c["_tools"] else None
                   for c in converted[name]] for name in DATASETS}
        expected["tool_text"][fmt]["extra"] = [or_none(lambda: ToolFormatter(fmt).apply(content=t)[0])
                                               for t in EXTRA_TOOLS]
        first_en = next(c for c in converted[DATASETS[0]] if c["_tools"])
        first_zh = next(c for c in converted[DATASETS[1]] if c["_tools"])
        expected["tool_text"][fmt]["full"] = [ToolFormatter(fmt).apply(content=first_en["_tools"])[0],
                                              ToolFormatter(fmt).apply(content=first_zh["_tools"])[0]]
        expected["function_text"][fmt] = {
            name: [[or_none(lambda: sha(function_text(fmt, m["content"])))
                    for m in c["_prompt"] + c["_response"] if m["role"] == "function"]
                   for c in converted[name]] for name in DATASETS}
        expected["function_text"][fmt]["extra"] = [or_none(lambda: function_text(fmt, c)) for c in EXTRA_CALLS]

    for template_name, tool_format in cases():
        for name in DATASETS:
            template, tokenizer = get_template_and_fix_tokenizer(template_name, tool_format)
            train, generate = [], []
            for i, c in enumerate(converted[name]):
                try:
                    input_ids, labels, pairs = supervised(template, tokenizer, c)
                except ValueError:   # glm4's format refuses parallel calls: so must the Java side
                    train.append(None), generate.append(None)
                    continue
                train.append(ids_hash(input_ids, labels))
                generate.append(ids_hash(*unsupervised(template, tokenizer, c)))
                if tool_format is None and template_name in FULL_TEMPLATES[name] and c["_tools"] and not any(
                        e["dataset"] == name and e["template"] == template_name for e in expected["examples"]):
                    expected["examples"].append({
                        "template": template_name, "dataset": name, "row": i,
                        "turns": [{"source": render(s, tokenizer), "target": render(t, tokenizer)} for s, t in pairs],
                        "input_ids": input_ids, "labels": labels})
            case = {"template": template_name, "tool_format": tool_format, "dataset": name}
            expected["supervised"].append({**case, "hashes": train})
            expected["generation"].append({**case, "hashes": generate})

    text = json.dumps(expected, ensure_ascii=False, indent=1)
    text = re.sub(r"\[[-0-9,\s]+\]", lambda m: re.sub(r"\s+", "", m.group(0)), text)  # id lists on one line
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
