"""detscope core: model folders, readers and TensorFlow work; never imports Qt."""
