// swift-tools-version:6.0
import PackageDescription

// Layout (a map of the architecture):
//   C targets        CDNNL, COpenBLAS, CHDF5, CPNG, CGLPK, CCairo (system libraries), CKernels (SIMD elementwise + scalar _ref)
//   MixDQCompute     Tensor, FeatureMap (NHWC), oneDNN/OpenBLAS engine, the ops every model uses
//   MixDQIO          safetensors, diffusers config.json, HDF5, PNG, YAML, COCO captions, torch.save'd name lists
//   MixDQModels      UNet2DConditionModel, CLIP text encoders, VAE decoder, tokenizer, schedulers, torch RNG
//   MixDQQuant       quantizers, calibration, quant checkpoints, bit configs; the quantization seam (sites,
//                    backends: fake quant, oneDNN INT8) and the deployable quantized UNet
//   MixDQPipeline    text-to-image pipeline, calibration-data generation, embedded default model,
//                    candidate selection with its reports (contact sheet, Pareto plot on cairo)
//   mixdq            the command-line tool (swift-argument-parser)
let toolAllocator: [LinkerSetting] = Context.environment["MIXDQ_MALLOC"] == "glibc"
    ? [] : [.linkedLibrary("tcmalloc_minimal", .when(platforms: [.linux]))]

let package = Package(
    name: "mixdq",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "mixdq", targets: ["MixDQCLI"]),
        .library(name: "MixDQ", targets: ["MixDQCompute", "MixDQIO", "MixDQModels", "MixDQQuant", "MixDQPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // Reads the zip container of torch.save files (the original MixDQ's act-protect list).
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        // GLPK ships no pkg-config file on Debian; the module map links -lglpk.
        .systemLibrary(name: "CGLPK", path: "Sources/CGLPK", providers: [.apt(["libglpk-dev"])]),
        // Text and plots in the search reports (contact sheet, Pareto plot); fonts from fonts-dejavu-core.
        .systemLibrary(name: "CCairo", path: "Sources/CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
        .target(name: "CKernels", path: "Sources/CKernels"),
        // Header only: function types of kernels/libmixdq_cuda.so, which is dlopen()ed at run time (no link).
        .systemLibrary(name: "CMixDQCUDA", path: "Sources/CMixDQCUDA"),
        .target(name: "MixDQCompute", dependencies: ["CKernels", "CDNNL", "COpenBLAS"]),
        .target(name: "MixDQIO", dependencies: ["MixDQCompute", "CKernels", "CHDF5", "CPNG", "Yams", "ZIPFoundation"]),
        .target(name: "MixDQModels", dependencies: ["MixDQCompute", "CKernels"]),
        .target(name: "MixDQQuant", dependencies: ["MixDQCompute", "MixDQIO", "MixDQModels", "CKernels", "CGLPK", "CMixDQCUDA", "Yams"]),
        .target(name: "MixDQPipeline", dependencies: ["MixDQCompute", "MixDQIO", "MixDQModels", "MixDQQuant", "CCairo"]),
        .executableTarget(name: "MixDQCLI", dependencies: [
            "MixDQCompute", "MixDQIO", "MixDQModels", "MixDQQuant", "MixDQPipeline",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        // gperftools' tcmalloc serves the tool's malloc (Debian libgoogle-perftools-dev): freed
        // activations are reused instead of page-faulted in afresh every layer (MemoryAllocator).
        // MIXDQ_MALLOC=glibc at build time leaves it out (glibc malloc, lower peak RSS, slower).
        linkerSettings: toolAllocator),
        // Fuzz entry points for scripts/fuzz.sh (libFuzzer); an ordinary build replays corpus files.
        .executableTarget(name: "MixDQFuzz", dependencies: ["MixDQIO", "MixDQModels", "MixDQQuant"],
                          path: "fuzz/Sources/MixDQFuzz"),
        .testTarget(name: "MixDQComputeTests", dependencies: ["MixDQCompute", "CKernels"]),
        .testTarget(name: "MixDQIOTests", dependencies: ["MixDQIO", "MixDQCompute"]),
        .testTarget(name: "MixDQModelsTests", dependencies: ["MixDQModels", "MixDQIO", "MixDQCompute"]),
        .testTarget(name: "MixDQQuantTests", dependencies: ["MixDQQuant", "MixDQModels", "MixDQIO", "MixDQCompute"]),
        .testTarget(name: "MixDQPipelineTests", dependencies: ["MixDQPipeline", "MixDQQuant", "MixDQModels", "MixDQIO", "MixDQCompute"]),
        .testTarget(name: "MixDQCLITests", dependencies: ["MixDQCLI", "MixDQIO", "MixDQCompute", "MixDQPipeline"]),
    ],
    swiftLanguageModes: [.v5]
)
