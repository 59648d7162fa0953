"""The upstream conformance suite, jupyter_kernel_test, with a sample for every test it has."""

from __future__ import annotations

import unittest

import jupyter_kernel_test as jkt


class RustmakerKernelTests(jkt.KernelTests):
    kernel_name = "rustmaker"
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("something went wrong");'

    completion_samples = [
        {"text": "%lsm", "matches": {"%lsmagic"}},
        {"text": "%clear_", "matches": {"%clear_output"}},
        {"text": "%%nosuchmagic", "matches": set()},
        {"text": "std::collections::HashM", "matches": {"HashMap"}},
    ]

    complete_code_samples = ["let x = 1;", "fn f() -> i32 { 1 }", "%lsmagic", 'let s = "{";']
    incomplete_code_samples = ["fn f() {", "let v = vec![1,", 'let s = "open']
    invalid_code_samples = ["}", "let x = (1];"]

    # `%NAME?` shows the help in the pager, as IPython's `?` does.
    code_page_something = "%lsmagic?"

    code_generate_error = 'let n: i32 = "not a number";'

    code_execute_result = [
        {"code": "1 + 2", "result": "3"},
        {"code": '"rust".len()', "result": "4"},
        {"code": "vec![1, 2, 3]", "result": "[1, 2, 3]"},
    ]

    code_display_data = [
        {"code": "%lsmagic", "mime": "text/html"},
        {"code": "%lsmagic", "mime": "text/plain"},
    ]

    code_history_pattern = "1 + *"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "%lsmagic"

    code_clear_output = 'println!("before");\n%clear_output'


class RustmakerIopubWelcome(jkt.IopubWelcomeTests):
    kernel_name = "rustmaker"
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
