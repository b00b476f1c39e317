"""How long a chapter reads (booktools.prose), and the two first RNN chapters' limits."""

import pytest

from booktools import ROOT
from booktools.prose import chapter_words, prose_words


def test_words_of_prose_leave_out_math_code_options_and_labels():
    text = """(sec-x)=
# A title

The state $\\mathbf{h}_t = \\phi(\\mathbf{x}_t)$ is kept, {glue:text}`ppl` in all.

$$
a + b = c
$$

```python
print("not prose")
```

```{admonition} Solution
:class: dropdown
Two words.
```
<!-- a comment the reader never sees -->
"""
    # "A title" / "The state is kept N in all" / "Two words" (the fence and its options drop)
    assert prose_words(text) == 2 + 7 + 2


@pytest.mark.parametrize("chapter, limit", [("rnn_scratch", 3500), ("rnn_concise", 2500)])
def test_first_rnn_chapters_read_in_one_sitting(chapter, limit):
    """The first encounter with an RNN and its concise version stay short; the engineering
    lives in the chapter on making recurrent networks fast."""
    words = chapter_words(ROOT / "book" / f"{chapter}.md")
    assert words <= limit, (f"book/{chapter}.md has {words} words of prose, over {limit}: "
                            "move engineering detail to book/rnn_fast.md or cut")
