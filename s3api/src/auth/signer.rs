//! being implemented
