// MixDQ quantization: quantizers, fake-quant layer kernels, calibration, checkpoints, bit configs.
