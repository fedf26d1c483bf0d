"""pytest settings for nbval over the chapter notebooks (`make nbval`)."""


def pytest_collection_modifyitems(items):
    # nbval waits a fixed 5 s for a cell's outputs once the kernel reports the cell done; on a
    # busy 2-core machine the progress-bar messages of a training cell can arrive later than that.
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 60
