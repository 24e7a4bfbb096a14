/// Horizontal bands of output rows that a large stride-1 Winograd convolution runs one at a time.
///
/// oneDNN's Winograd needs its input and output in a blocked layout and a scratch of transformed
/// tiles, all proportional to the input it is given: on a VAE decoder at 512×512 that took the peak
/// from 1.5 to 3.6-4.2 GiB. Running the convolution on bands of rows bounds those transients by the
/// band instead. A band's input is its output rows plus the `kernelSize - 1` rows of halo around
/// them; rows above the top and below the bottom edge are the convolution's zero padding, staged as
/// zeros, so one primitive (padding only left and right) serves every band.
public struct WinogradBands: Equatable, Sendable {
    /// One band: output rows `outputStart ..< outputStart + outputRows`, computed from the source
    /// rows `inputStart ..< inputStart + inputRows`, which go to row `stagingOffset` of the band's
    /// input (`rowsPerBand + kernelSize - 1` rows; the rest are zeros).
    public struct Band: Equatable, Sendable {
        public let outputStart: Int, outputRows: Int
        public let inputStart: Int, inputRows: Int, stagingOffset: Int
        public init(outputStart: Int, outputRows: Int, inputStart: Int, inputRows: Int, stagingOffset: Int) {
            self.outputStart = outputStart; self.outputRows = outputRows
            self.inputStart = inputStart; self.inputRows = inputRows; self.stagingOffset = stagingOffset
        }
    }

    /// Output rows per band (the last band may have fewer).
    public let rowsPerBand: Int
    /// Rows of one band's input: `rowsPerBand + kernelSize - 1`.
    public let stagedRows: Int
    public let bands: [Band]

    /// Output rows per band are a multiple of this (Winograd's F(4×4,3×3) output tile), so the bands'
    /// tiles fall where a single call's would.
    public static let rowMultiple = 4

    /// The bands for a stride-1 convolution whose input per sample (`channels` × `inputHeight` ×
    /// `inputWidth`) exceeds `maximumElements`; nil when it does not (one call does it all). A band's
    /// input stays within `maximumElements` unless even `rowMultiple` output rows exceed it.
    public init?(channels: Int, inputHeight: Int, inputWidth: Int, kernelSize: Int, padding: Int, maximumElements: Int) {
        let outputHeight = inputHeight + 2 * padding - kernelSize + 1
        // Padding up to half the kernel ("same" or "valid"): every band then reads at least one source row.
        guard channels * inputHeight * inputWidth > maximumElements, outputHeight > 0, padding <= kernelSize / 2 else { return nil }
        let halo = kernelSize - 1
        let fitting = maximumElements / max(1, channels * inputWidth) - halo
        let tallest = max(Self.rowMultiple, fitting / Self.rowMultiple * Self.rowMultiple)
        guard tallest < outputHeight else { return nil }
        // As few bands as fit, made as even as the 4-row tiles allow: every band is computed at the
        // full band height, so a short last band would cost a whole one.
        let count = (outputHeight + tallest - 1) / tallest
        let even = (outputHeight + count - 1) / count
        let rows = (even + Self.rowMultiple - 1) / Self.rowMultiple * Self.rowMultiple
        rowsPerBand = rows
        stagedRows = rows + halo
        bands = stride(from: 0, to: outputHeight, by: rows).map { start in
            let first = start - padding                              // source row of the band's first input row
            let low = max(0, first), high = min(inputHeight, first + rows + halo)
            return Band(outputStart: start, outputRows: min(rows, outputHeight - start),
                        inputStart: low, inputRows: high - low, stagingOffset: low - first)
        }
    }

    /// Whether the band's staged input has rows that no source row fills (the zero padding).
    public func needsZeros(_ band: Band) -> Bool { band.stagingOffset > 0 || band.stagingOffset + band.inputRows < stagedRows }
}
