"""The one definition of the Inception V3 classifier, as ``dali/pipeline.py`` is the pipeline's.

The repository's ``inception_graphdef/config.pbtxt`` declares this contract: a frozen
TensorFlow GraphDef whose float32 placeholder ``input`` takes [-1, 299, 299, 3] images in
[-1, 1] and whose ``InceptionV3/Predictions/Softmax`` gives 1001 class probabilities
(class 0 is "background", then the 1000 ImageNet classes). The ONNX build of the same
graph (``inception_onnx``, for images without TensorFlow) has the same contract with the
tensors named ``input`` and ``probabilities``.

``tritonship build`` installs either the official graph (TF-slim's 2016 export, verified
against the digest below) or :func:`random_graph_bytes`, a random-weight export with the
same contract for offline builds and tests; :mod:`tritonship.repository.inception`
downloads, verifies, checks and installs. This file ships in the package as
``tritonship.assets.models.inception_v3``.
"""

from __future__ import annotations

INPUT_NAME = "input"
OUTPUT_NAME = "InceptionV3/Predictions/Softmax"
IMAGE_SIZE = 299
NUM_CLASSES = 1001

#: The ONNX build (``tritonship build --format onnx``) converts the same frozen graph with
#: tf2onnx, renaming TensorFlow's tensors (``input:0``, ``InceptionV3/Predictions/Softmax:0``)
#: to these clean names; its ``inception_onnx/config.pbtxt`` declares them.
ONNX_INPUT_NAME = "input"
ONNX_OUTPUT_NAME = "probabilities"
#: The symbolic batch dimension of both ONNX tensors (Triton reads it as -1).
ONNX_BATCH_DIM = "batch"
#: What one 299x299 image costs the network: 5.71 G multiply-adds (torchvision's model
#: table for inception_v3, "GFLOPS 5.71", counts multiply-adds; OpenVINO's model zoo gives
#: the same network as 11.469 GFLOPs, two operations each). The 1001-class head of TF-slim's
#: export adds 2 M to the 1000-class one: lost in the rounding.
MULTIPLY_ADDS = 5.71e9
#: ONNX opset 17: converted fully by tf2onnx 1.17 (which supports up to 18) and run by
#: ONNX Runtime >= 1.12, older than any SageMaker Triton image from 23.12 on (24.09 ships
#: ONNX Runtime 1.19). IR version 8 is what opset 17 needs (onnx.helper.VERSION_TABLE).
ONNX_OPSET = 17

OFFICIAL_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/models/"
    "inception_v3_2016_08_28_frozen.pb.tar.gz"
)
#: SHA-256 and size of the official archive (as published by OpenVINO's model zoo).
OFFICIAL_SHA256 = "7045b72a954af4dce36346f478610acdccbf149168fa25c78e54e32f0c723d6d"
OFFICIAL_SIZE = 88_668_554
#: The frozen graph inside the archive.
OFFICIAL_MEMBER = "inception_v3_2016_08_28_frozen.pb"


def random_graph_bytes(seed: int = 0) -> bytes:
    """Export Inception V3 from Keras with random weights, as the official graph's contract.

    Keras' InceptionV3 trunk (no top) with global average pooling, then a 1001-way softmax;
    input placeholder ``input`` [-1, 299, 299, 3] and output ``InceptionV3/Predictions/Softmax``.
    """
    import keras
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
    from tensorflow.python.util import deprecation

    keras.utils.set_random_seed(seed)
    trunk = keras.applications.InceptionV3(
        include_top=False, weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), pooling="avg"
    )
    head = keras.layers.Dense(NUM_CLASSES, activation="softmax")
    spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(images: tf.Tensor) -> tf.Tensor:
        return tf.identity(head(trunk(images, training=False)), name=OUTPUT_NAME)

    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    with deprecation.silence():  # extract_sub_graph is "TF1 only" but the right tool here
        pruned = tf.compat.v1.graph_util.extract_sub_graph(graph_def, [OUTPUT_NAME])
    return pruned.SerializeToString(deterministic=True)
