/// Σ of each output's weight codes (a row of `rowLength` codes per output, wrapping like the s32
/// products): the zero-point correction `z·Σw` of every W8A8 epilogue.
enum Int8WeightSums {
    static func perOutput(_ codes: [Int8], outputs: Int, rowLength: Int) -> [Int32] {
        (0..<outputs).map { o in codes[(o * rowLength)..<((o + 1) * rowLength)].reduce(Int32(0)) { $0 &+ Int32($1) } }
    }
}
