"""What a person sees: the console, TensorBoard, figures, the scikit-learn reference."""
