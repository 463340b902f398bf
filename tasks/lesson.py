"""The whole lesson, step by step, with minibert and glove doing the work.

    make lesson        (or: python -m tasks.lesson)

1. word vectors (GloVe)          5. cross-encoder
2. contextual embeddings (BERT)  6. attention
3. masked language modelling     7. from token vectors to a sentence vector
4. next-sentence prediction

Each step prints the model it used. A step whose weights cannot be had here says so in one line,
with the command that fetches them, and the lesson goes on.

Prints, offline (HF_HUB_OFFLINE=1; each step's own docstring shows its part):

    The Hugging Face Hub is not reachable (or HF_HUB_OFFLINE=1): using cached and shipped models only.

    === Step 1: Word vectors (GloVe) ===
    ...
    === Step 6: Attention ===
    ...
    heatmap: out/attention_layer2_head0.png

    === Step 7: From token vectors to a sentence vector ===
    ...

    The lesson ran in 10.8 s. Pictures are in out/.
"""

import argparse
import sys
import time

from minibert.app.defaults import go_offline_if_hub_unreachable

from . import (step1_word_vectors, step2_contextual, step3_masked_lm, step4_next_sentence, step5_cross_encoder,
               step6_attention, step7_sentence_vectors)

STEPS = (step1_word_vectors, step2_contextual, step3_masked_lm, step4_next_sentence, step5_cross_encoder,
         step6_attention, step7_sentence_vectors)


def main(argv=()) -> None:
    # It takes no options, but --help must say what it does rather than run it, and a stray argument
    # (a step's option, say) is refused rather than ignored. Only the command line's own arguments are
    # read (below): main() called from a notebook must not parse the kernel's.
    argparse.ArgumentParser(prog="python -m tasks.lesson", description=__doc__.split("\n\n")[0],
                            epilog="Each step is also a program of its own: python -m tasks.step1_word_vectors, "
                                   "..., python -m tasks.step7_sentence_vectors (each with --help).").parse_args(argv)
    if not go_offline_if_hub_unreachable():
        print("The Hugging Face Hub is not reachable (or HF_HUB_OFFLINE=1): using cached and shipped models only.")
    start = time.perf_counter()
    for step in STEPS:
        step.run()
    print(f"\nThe lesson ran in {time.perf_counter() - start:.1f} s. Pictures are in out/.")


if __name__ == "__main__":
    main(sys.argv[1:])
