"""Run the lesson, step by step.

    make lesson        (or: python -m tasks.lesson)

The lesson's steps arrive one issue at a time; this runner lists the ones that exist so far.
"""

STEPS: list[str] = []  # module names under tasks/, in lesson order


def main() -> None:
    if not STEPS:
        print("The lesson's steps are not written yet: nothing to run.")
        return


if __name__ == "__main__":
    main()
