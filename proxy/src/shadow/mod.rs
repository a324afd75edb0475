//! The shadow pipeline: the data plane's tee, the bounded queue, and the workers that send the
//! copy to the other path, compare and write records.

pub mod pipeline;
pub mod tee;
